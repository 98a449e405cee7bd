package server_test

import "crypto/tls"

// tlsConfigRequestingClientCerts makes a test server ask for (but not
// verify) client certificates, as a kubelet does before checking them.
var tlsConfigRequestingClientCerts = tls.Config{ClientAuth: tls.RequestClientCert}
