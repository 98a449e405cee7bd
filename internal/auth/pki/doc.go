// Package pki keeps a cluster's certificates and keys: the cluster CA, the
// API server's serving certificate, the admin client certificate and the
// service-account signing key pair. It issues more certificates from the CA,
// writes kubeconfig files and builds the API server's tls.Config.
//
// # The simplest use
//
// `skiff server` calls Ensure once at start:
//
//	bundle, err := pki.Ensure(pki.Config{
//		Dir:      filepath.Join(dataDir, "tls"),
//		DNSNames: []string{hostname},
//		IPs:      append(hostIPs, serviceClusterIP), // 10.43.0.1
//		Logger:   logger,
//	})
//	if err != nil { ... }
//	err = pki.WriteKubeconfig(filepath.Join(dataDir, "admin.kubeconfig"),
//		bundle.AdminKubeconfig("https://127.0.0.1:6443"))
//	srv := &http.Server{TLSConfig: bundle.ServerTLSConfig(), ...}
//
// # What Ensure does
//
// The directory holds these files (keys are mode 0600, certificates 0644;
// every file is written to a temporary name, synced and renamed, so a crash
// never leaves a half-written file):
//
//	ca.crt, ca.key          cluster CA, ECDSA P-256, 10 years
//	sa.key, sa.pub          service-account token signing key pair
//	server.crt, server.key  API server serving certificate, 1 year
//	admin.crt, admin.key    CN=skiff-admin, O=system:masters, 1 year
//
// On the first start Ensure creates all of them. On later starts it loads
// them and checks them, in this order:
//
//	CA          both files missing      -> create
//	            one of the two missing  -> ErrMismatch (never replaced)
//	            unparseable / not a CA  -> ErrCorrupt
//	            key does not match      -> ErrMismatch
//	            expired                 -> ErrExpired (expiring soon: a warning)
//	SA keys     both missing            -> create
//	            sa.pub missing          -> derive it from sa.key
//	            sa.key missing          -> ErrMismatch
//	            unparseable / mismatch  -> ErrCorrupt / ErrMismatch
//	leaf certs  both missing            -> issue
//	            one of the two missing  -> issue (a warning)
//	            unparseable             -> ErrCorrupt
//	            key does not match, or
//	            not signed by the CA    -> ErrMismatch
//	            expires within 90 days,
//	            not yet valid, lacks a
//	            requested SAN, or (admin)
//	            a different subject     -> re-issue with the same key
//
// Re-issuing keeps the existing private key so that only the certificate
// file changes: a crash between two renames can then never pair a new key
// with an old certificate. Nothing replaces a CA: losing it means every
// kubeconfig and node credential stops working, so that decision is left to
// the operator, and the error says which file to remove.
//
// A CA brought by the operator (ca.crt and ca.key placed in the directory
// before the first start) is used as is; RSA and ECDSA keys in PKCS#1,
// PKCS#8 or SEC 1 PEM are accepted.
//
// # Issuing more certificates
//
// CA.IssueClient and CA.IssueServing create a fresh key and a certificate
// signed by the CA; node agents will get their client and serving
// certificates this way. TLS bootstrap (signing a node's CSR) will add a
// method that signs a given public key; CA.sign is already written that way.
//
// # Errors
//
// Ensure, the issuing methods and WriteKubeconfig return errors that name
// the file or certificate concerned. Three sentinels classify them and are
// checked with errors.Is: ErrCorrupt, ErrMismatch and ErrExpired.
//
// # Concurrency
//
// Ensure must not run concurrently on one directory (nor in two processes).
// A CA, a KeyPair and a Bundle are immutable once returned and safe for
// concurrent use.
package pki
