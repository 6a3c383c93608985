// Package docs holds ehgate's documents (the Markdown files of this directory). It has no
// code: its test checks that no .go or .md file of the repository names a document that is
// not in the repository, as a vendor's clone has only what is in it, and that the facts of
// acceptance-to-production.md (URLs, pinned subjects, a CA's fingerprint, endpoints, files)
// are those the code and the repository's test data hold.
package docs
