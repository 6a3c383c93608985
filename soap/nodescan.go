package soap

import (
	"bytes"
	"fmt"
	"strings"
)

// nodeCounts is what scanNodes counted.
type nodeCounts struct {
	elements, nodes, comments int
}

// scanNodes counts the nodes of data (elements, text runs and CDATA
// sections, comments, processing instructions) and enforces the DOCTYPE ban
// and every count bound of lim before any tree is built. It stops at the
// first bound exceeded, so refusing a document costs at most the bytes
// before the offending node: a message at the size limit full of comments is
// refused after MaxComments of them.
//
// It is a lexer, not a parser: on well-formed XML its counts are exact; on
// other input they may be off, and the parse that follows refuses it. A
// quoted attribute value may hold '>' and is skipped as a whole.
func scanNodes(data []byte, lim Limits) (nodeCounts, error) {
	var c nodeCounts
	depth := 0
	i := 0
	over := func(name string, n, max int) error {
		if n > max {
			return &LimitError{Limit: name, Max: int64(max)}
		}
		return nil
	}
	node := func() error {
		c.nodes++
		return over("nodes", c.nodes, lim.MaxNodes)
	}
	for i < len(data) {
		if data[i] != '<' {
			// A text run up to the next markup: one node.
			if err := node(); err != nil {
				return c, err
			}
			j := bytes.IndexByte(data[i:], '<')
			if j < 0 {
				return c, nil
			}
			i += j
			continue
		}
		rest := data[i:]
		switch {
		case bytes.HasPrefix(rest, []byte("<!--")):
			end := bytes.Index(rest[4:], []byte("-->"))
			if end < 0 {
				return c, fmt.Errorf("%w: unterminated comment", ErrMalformed)
			}
			i += 4 + end + 3
			c.comments++
			if err := over("comments", c.comments, lim.MaxComments); err != nil {
				return c, err
			}
			if err := node(); err != nil {
				return c, err
			}
		case bytes.HasPrefix(rest, []byte("<![CDATA[")):
			end := bytes.Index(rest[9:], []byte("]]>"))
			if end < 0 {
				return c, fmt.Errorf("%w: unterminated CDATA section", ErrMalformed)
			}
			i += 9 + end + 3
			if err := node(); err != nil {
				return c, err
			}
		case bytes.HasPrefix(rest, []byte("<!")):
			kw := strings.ToUpper(strings.TrimSpace(string(rest[2:min(len(rest), 64)])))
			for _, k := range []string{"DOCTYPE", "ENTITY", "ELEMENT", "ATTLIST", "NOTATION"} {
				if strings.HasPrefix(kw, k) {
					return c, ErrDoctype
				}
			}
			return c, fmt.Errorf("%w: unexpected directive", ErrMalformed)
		case bytes.HasPrefix(rest, []byte("<?")):
			end := bytes.Index(rest[2:], []byte("?>"))
			if end < 0 {
				return c, fmt.Errorf("%w: unterminated processing instruction", ErrMalformed)
			}
			i += 2 + end + 2
			c.comments++
			if err := over("comments", c.comments, lim.MaxComments); err != nil {
				return c, err
			}
			if err := node(); err != nil {
				return c, err
			}
		default:
			end, ok := tagEnd(rest)
			if !ok {
				return c, fmt.Errorf("%w: unterminated tag", ErrMalformed)
			}
			i += end + 1
			switch {
			case len(rest) > 1 && rest[1] == '/':
				depth--
				continue // the start tag counted the element
			case rest[end-1] != '/':
				depth++
				if err := over("depth", depth, lim.MaxDepth); err != nil {
					return c, err
				}
			}
			c.elements++
			if err := over("elements", c.elements, lim.MaxElements); err != nil {
				return c, err
			}
			if err := node(); err != nil {
				return c, err
			}
		}
	}
	return c, nil
}

// tagEnd returns the index of the '>' closing the tag that tag starts with,
// skipping quoted attribute values.
func tagEnd(tag []byte) (int, bool) {
	var quote byte
	for j := 1; j < len(tag); j++ {
		switch b := tag[j]; {
		case quote != 0:
			if b == quote {
				quote = 0
			}
		case b == '"' || b == '\'':
			quote = b
		case b == '>':
			return j, true
		}
	}
	return 0, false
}
