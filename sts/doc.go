// Package sts obtains SAML 1.1 holder-of-key tokens from the eHealth secure token service (STS)
// for one care provider and keeps a valid one in memory, renewed in the background before it
// expires. It also loads the credentials (PKCS#12 keystores or PEM files) the care provider
// authenticates and signs with.
//
// The smallest use:
//
//	cred, err := sts.LoadPKCS12("identity.p12", password, sts.LoadOptions{})
//	provider, err := sts.NewProvider(sts.ProviderConfig{
//		Identification: cred,
//		Attributes:     sts.PresetPharmacy,
//		SSIN:           holderSSIN,
//		NIHII:          pharmacyNIHII,
//		STSRoots:       stsRoots,
//		Router:         engine, // a *bcp.Engine, or sts.FixedEndpoint(url)
//	})
//	defer provider.Close()
//	signer, err := provider.Signer(ctx) // from memory in nanoseconds while a token is valid
//	msg, err := signer.Sign(soap.NewEnvelope(body))
//
// Provider.Token returns the token itself (the assertion as issued, its validity and its
// certified attributes), for callers that build their own soap.Signer.
//
// # Credentials
//
// LoadPKCS12 and LoadPEM check at load time that the key matches the certificate, that the
// certificate is inside its validity period and that the chain, when one is given, verifies
// (up to its last element, or up to LoadOptions.Roots). Errors are *CredentialError values that
// name the file and the problem (ErrBadPassword, ErrKeyMismatch, ErrCertExpired, ...), never
// the password. The identification credential (which authenticates the request) and the
// holder-of-key credential (which the token is bound to) may differ.
//
// # Token requests
//
// The request is the SAML-P 1.1 dialect, as the official connector sends it: a samlp:Request
// with an AttributeQuery whose Subject names the identification certificate, confirmed
// holder-of-key by the holder-of-key certificate, and whose inner assertion claims the
// configured attributes; AttributeDesignators name the attributes to certify. The names
// (NameIdentifier, its NameQualifier, the inner assertion's Issuer) are the certificate's
// subject and issuer in Java's RFC 1779 rendering (x500.RFC1779), which the STS compares with
// the signing certificate. The SOAP message is WS-Security signed with the identification
// credential over the Body, the Timestamp and the BinarySecurityToken (the STS's policy has
// sp:ProtectTokens); when the holder-of-key credential differs, the samlp:Request is also
// enveloped-signed with it. The attribute set is configuration: PresetPharmacy (the seven
// designators of the official pharmacy configuration), PresetDoctor, PresetNurse and the
// other presets each cite their source, filled with ProviderConfig.SSIN and
// ProviderConfig.NIHII.
//
// Answers are read strictly, each refusal with its own error: the StatusCode must be the
// QName samlp:Success (else *StatusError), InResponseTo our RequestID (ErrInResponseTo), and
// the response must hold exactly one assertion, signed by a certificate that chains to
// ProviderConfig.STSRoots and is the pinned STS certificate (ProviderConfig.STSSigner, by
// subject or fingerprint, default PlatformSTS: ErrSigner), from the expected Issuer, inside
// its Conditions (with ProviderConfig.ClockSkew on NotBefore), valid no longer than asked
// plus the skew (ErrLifetime), with exactly one SubjectConfirmation (ErrConfirmation),
// holder-of-key with our certificate alone (ErrHolderOfKey).
//
// No clear text: an endpoint that is not https is refused (FixedEndpoint at NewProvider,
// a Router's endpoint before anything is sent: ErrInsecureEndpoint), and the HTTP client
// follows no redirect: a redirect is a failure of that endpoint (*RedirectError, ErrRedirect).
// Token.Assertion keeps the assertion's bytes exactly as the STS signed them, cut out of the
// response (namespace declarations inherited from the response are added to its start tag so
// that it stands alone; its canonical form, and so its signature, is unchanged).
//
// # WS-Trust
//
// ProviderConfig.Dialect = DialectWSTrust speaks WS-Trust 1.3 to the SecurityTokenService
// endpoint (service ServiceNameWSTrust, SOAPAction SOAPActionWSTrust), per the platform's
// STS WSDL: an Issue (wst:RequestSecurityToken with TokenType SAML 1.1, Claims of the
// authclaims dialect built from the same AttributeSet, Lifetime, KeyType PublicKey, UseKey
// holding the holder-of-key certificate) when no valid token is held, a Renew (wst:RenewTarget
// embedding the assertion held) while one is. The answer must carry our Context
// (ErrInResponseTo) and hold one saml:Assertion in wst:RequestedSecurityToken, validated as
// above. When the STS answers with a wst:SignChallenge, the challenge is returned
// (SignChallengeResponse, SOAPActionChallenge) signed with the holder-of-key credential.
// Token cache, renewal, single flight and continuity are the same in both dialects.
//
// # Renewal
//
// The lifetime is the STS's decision: the renewal is scheduled at ProviderConfig.RenewFraction
// (default 50 %) of the lifetime it actually granted. One request is in flight per Provider
// however many callers wait. A failed renewal is retried with exponential backoff while the
// current token stays in use; Token fails only when no valid token is left, with a *TokenError
// that matches ErrNoToken, and bcp.ErrUnavailable when the STS could not be reached; the cause
// (*soap.Fault, *bcp.StatusError, *StatusError, *ValidationError) is reachable with errors.As.
//
// A TokenStore persists each new token; NewProvider loads the stored one, validated again
// (signature, holder-of-key, expiry), so that a restart during an STS outage keeps working.
//
// Logs never carry the assertion, its attributes or an SSIN; errors name the identity by
// Provider.Identity, a digest of the certificates and the attribute set. A token is named at
// info level and above by assertion_ref, the first 12 hex digits of the SHA-256 of its
// AssertionID (the ID names the bearer token at the platform); the ID itself is logged only
// at debug level, once per installed token, with its assertion_ref. A refusing STS's
// message is bounded and redacted (StatusError).
package sts
