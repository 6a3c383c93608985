package soap

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/beevik/etree"
)

// Limits bound what Parse accepts. A zero field takes its default.
type Limits struct {
	// MaxBytes is the largest accepted input in bytes; 0 = 10 MiB.
	MaxBytes int64
	// MaxDepth is the deepest accepted element nesting (the root is depth 1); 0 = 64.
	MaxDepth int
	// MaxElements is the largest accepted number of elements; 0 = 100 000.
	MaxElements int
	// MaxNodes is the largest accepted number of nodes of every kind:
	// elements, text runs (CDATA sections included), comments and processing
	// instructions; 0 = 400 000. Canonicalisation visits every node, so this
	// bounds the work of a signature check, not only the elements.
	MaxNodes int
	// MaxComments is the largest accepted number of comments and processing
	// instructions (the XML declaration included); 0 = 1 000. Signatures do
	// not cover comments and the platform's messages carry none: many of
	// them are only ever a way to make a small message costly.
	MaxComments int
}

// DefaultLimits are the limits a zero Limits stands for.
var DefaultLimits = Limits{MaxBytes: 10 << 20, MaxDepth: 64, MaxElements: 100_000, MaxNodes: 400_000, MaxComments: 1_000}

// Validate names a negative field of l; zero fields are fine (defaults).
func (l Limits) Validate() error {
	switch {
	case l.MaxBytes < 0:
		return errors.New("soap: Limits.MaxBytes is negative")
	case l.MaxDepth < 0:
		return errors.New("soap: Limits.MaxDepth is negative")
	case l.MaxElements < 0:
		return errors.New("soap: Limits.MaxElements is negative")
	case l.MaxNodes < 0:
		return errors.New("soap: Limits.MaxNodes is negative")
	case l.MaxComments < 0:
		return errors.New("soap: Limits.MaxComments is negative")
	}
	return nil
}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultLimits.MaxBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultLimits.MaxDepth
	}
	if l.MaxElements <= 0 {
		l.MaxElements = DefaultLimits.MaxElements
	}
	if l.MaxNodes <= 0 {
		l.MaxNodes = DefaultLimits.MaxNodes
	}
	if l.MaxComments <= 0 {
		l.MaxComments = DefaultLimits.MaxComments
	}
	return l
}

// Errors of Parse. Each is wrapped with detail; test with errors.Is.
var (
	// ErrDoctype reports a document type declaration: DTDs and entity
	// definitions are never accepted.
	ErrDoctype = errors.New("soap: xml document type declaration not allowed")
	// ErrMalformed reports input that is not well-formed XML (repeated
	// attributes and invalid namespace declarations included), or a part of a
	// signed message that cannot be read (a timestamp that is not a date).
	ErrMalformed = errors.New("soap: malformed xml")
	// ErrNotEnvelope reports well-formed XML that is not a SOAP 1.1 envelope with a Body.
	ErrNotEnvelope = errors.New("soap: not a soap 1.1 envelope")
	// ErrLimit reports input beyond a Limits bound; the error is a *LimitError.
	ErrLimit = errors.New("soap: xml limit exceeded")
)

// LimitError says which bound of Limits the input exceeded.
type LimitError struct {
	Limit string // "bytes", "depth", "elements", "nodes", "comments" or "namespaces" (declarations in scope, at most 256)
	Max   int64  // the bound in force
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("soap: xml exceeds the %s limit of %d", e.Limit, e.Max)
}

// Is makes errors.Is(err, ErrLimit) true for every *LimitError.
func (e *LimitError) Is(target error) bool { return target == ErrLimit }

// Parse reads a SOAP 1.1 envelope from r within lim. It rejects any DOCTYPE
// (ErrDoctype), input beyond lim or with more than 256 namespace
// declarations in scope (*LimitError), XML that is not well-formed
// (ErrMalformed) and documents that are not an envelope with a Body
// (ErrNotEnvelope). It never panics on its input.
func Parse(r io.Reader, lim Limits) (*etree.Document, error) {
	doc, err := ParseDocument(r, lim)
	if err != nil {
		return nil, err
	}
	if _, _, err := envelopeParts(doc); err != nil {
		return nil, err
	}
	return doc, nil
}

// ParseDocument is Parse for any XML document: the same limits and DOCTYPE
// rejection, without requiring a SOAP envelope.
func ParseDocument(r io.Reader, lim Limits) (*etree.Document, error) {
	if err := lim.Validate(); err != nil {
		return nil, err
	}
	lim = lim.withDefaults()
	data, err := io.ReadAll(io.LimitReader(r, lim.MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("soap: read xml: %w", err)
	}
	if int64(len(data)) > lim.MaxBytes {
		return nil, &LimitError{Limit: "bytes", Max: lim.MaxBytes}
	}
	return parseBytes(data, lim)
}

// parseBytes parses data, already within lim.MaxBytes. A lexer first
// enforces the DOCTYPE ban and the count bounds (a few ms for 10 MiB), so no
// tree is built for a document beyond them.
func parseBytes(data []byte, lim Limits) (*etree.Document, error) {
	if _, err := scanNodes(data, lim); err != nil {
		return nil, err
	}
	doc := etree.NewDocument()
	doc.ReadSettings = etree.ReadSettings{MaxDepth: lim.MaxDepth, PreserveDuplicateAttrs: true}
	if err := doc.ReadFromBytes(data); err != nil {
		if errors.Is(err, etree.ErrMaxDepth) {
			return nil, &LimitError{Limit: "depth", Max: int64(lim.MaxDepth)}
		}
		return nil, fmt.Errorf("%w: %s", ErrMalformed, syntaxReason(err))
	}
	if doc.Root() == nil {
		return nil, fmt.Errorf("%w: no root element", ErrMalformed)
	}
	for _, t := range doc.Child {
		switch t := t.(type) {
		case *etree.Directive:
			return nil, ErrDoctype
		case *etree.CharData:
			if !t.IsWhitespace() {
				return nil, fmt.Errorf("%w: text outside the root element", ErrMalformed)
			}
		}
	}
	if n := len(doc.ChildElements()); n != 1 {
		return nil, fmt.Errorf("%w: %d root elements", ErrMalformed, n)
	}
	if err := checkAttributes(doc.Root(), 0); err != nil {
		return nil, err
	}
	return doc, nil
}

// syntaxReason is what the XML decoder says of malformed input, without the input it may
// quote (an entity's text, a name, a version): an error text never carries an answer's
// content.
func syntaxReason(err error) string {
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		msg := se.Msg
		if i := strings.Index(msg, ": "); i >= 0 { // "invalid XML name: …"
			msg = msg[:i]
		}
		return fmt.Sprintf("XML syntax error on line %d: %s", se.Line, unquoted(msg))
	}
	return unquoted(err.Error())
}

// unquoted cuts msg where it starts quoting input: at "&", "<" or a quote.
func unquoted(msg string) string {
	if strings.Contains(msg, " closed by ") {
		return "element closed by another end tag"
	}
	if i := strings.IndexAny(msg, "&<\"'"); i >= 0 {
		msg = msg[:i]
	}
	return strings.TrimSpace(msg)
}

const xmlNamespace = "http://www.w3.org/XML/1998/namespace"

// maxNamespaces bounds the namespace declarations in scope at any element.
// Real messages have a few dozen; canonicalisation copies the scope at
// every element, so thousands would make a small message expensive.
const maxNamespaces = 256

// checkAttributes rejects an element carrying the same attribute twice,
// which encoding/xml lets through but XML forbids (two readers of such a
// message could each see a different value), and more than maxNamespaces
// declarations in scope; inScope counts those of el's ancestors.
func checkAttributes(el *etree.Element, inScope int) error {
	for _, a := range el.Attr {
		if a.Space == "xmlns" || (a.Space == "" && a.Key == "xmlns") {
			inScope++
		}
		if a.Space == "xmlns" {
			// Namespaces in XML 1.0: a prefix cannot be bound to no namespace,
			// xmlns cannot be declared, xml only to its own URI.
			if a.Value == "" || a.Key == "xmlns" || (a.Key == "xml") != (a.Value == xmlNamespace) {
				return fmt.Errorf("%w: invalid namespace declaration %s=%q on %s", ErrMalformed, a.FullKey(), a.Value, el.FullTag())
			}
		}
	}
	if inScope > maxNamespaces {
		return &LimitError{Limit: "namespaces", Max: maxNamespaces}
	}
	if len(el.Attr) <= 8 {
		for i := 1; i < len(el.Attr); i++ {
			for j := 0; j < i; j++ {
				if el.Attr[i].Space == el.Attr[j].Space && el.Attr[i].Key == el.Attr[j].Key {
					return fmt.Errorf("%w: attribute %s repeated on %s", ErrMalformed, el.Attr[i].FullKey(), el.FullTag())
				}
			}
		}
	} else {
		seen := make(map[[2]string]bool, len(el.Attr))
		for _, a := range el.Attr {
			k := [2]string{a.Space, a.Key}
			if seen[k] {
				return fmt.Errorf("%w: attribute %s repeated on %s", ErrMalformed, a.FullKey(), el.FullTag())
			}
			seen[k] = true
		}
	}
	for _, t := range el.Child {
		if c, ok := t.(*etree.Element); ok {
			if err := checkAttributes(c, inScope); err != nil {
				return err
			}
		}
	}
	return nil
}
