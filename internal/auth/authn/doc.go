// Package authn finds out who sent an API request: a client certificate
// signed by the cluster CA, or a bearer token. It holds the authenticators,
// the User they produce, the context helpers that carry the User to the
// handlers, and the HTTP middleware that answers 401 when nobody is found.
//
// # Wiring
//
// The API server builds one Authenticator from the pieces it has and puts
// the middleware in front of everything else:
//
//	x509Auth, err := authn.NewX509(authn.X509Config{Roots: bundle.CA.Pool()})
//	tokens, err := authn.LoadTokenFile(tokenFilePath) // --token-auth-file
//	a := authn.Union(
//		x509Auth,
//		authn.BearerToken(authn.UnionTokens(
//			tokens,
//			// later: service-account JWTs, bootstrap tokens
//		)),
//	)
//	handler, err := authn.Middleware(a, apiHandler, authn.MiddlewareConfig{
//		PublicPaths: authn.PublicInfoPaths(), // /healthz /livez /readyz /version
//		Logger:      logger,
//	})
//	// in a handler: u, ok := authn.UserFrom(r.Context())
//
// # A request's way through
//
//	request ─► Middleware ─► Authenticator.AuthenticateRequest
//	                           (user, true, nil)   ─► next, with the user in the context
//	                           (nil, false, err)   ─► 401 Status (credentials invalid)
//	                           (nil, false, nil)   ─► public path? ─► next, as system:anonymous
//	                                                   otherwise   ─► 401 Status
//
// Union asks each authenticator in turn and takes the first that succeeds,
// so a request with a bad client certificate but a good token gets in, as
// in Kubernetes. Invalid credentials always fail, even on a public path:
// anonymous access is for requests that present none.
//
// # More token kinds
//
// Tokens come in a bearer header; BearerToken extracts the token and asks
// a TokenAuthenticator. TokenFile is the first. A service-account JWT
// authenticator (verifying with the key pki keeps in sa.pub) and a
// bootstrap-token authenticator (Secrets in kube-system) implement
// TokenAuthenticator too and join through UnionTokens; a token kind that
// is not theirs must return (nil, false, nil) so that the next one is
// asked.
//
// # Users and groups
//
// Every authenticated user is in the group system:authenticated. A client
// certificate's CN is the user name and its O values the groups, so the
// admin certificate (O=system:masters) is a cluster admin once RBAC
// arrives. Until then every authenticated user may do everything.
package authn
