// Package sts obtains and keeps SAML 1.1 holder-of-key tokens from the eHealth secure token
// service (STS) for one care provider's identity, and loads the credentials (PKCS#12 or PEM)
// that identity authenticates and signs with.
package sts
