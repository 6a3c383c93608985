package docs_test

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// mdRef finds references to Markdown documents: a name ending in the .md extension, alone, in
// a directory, or up from the referring file. A match preceded by
// a word character, '@', ':', '/', '.' or '-' is the tail of a longer name or of a URL and is
// skipped.
var mdRef = regexp.MustCompile(`(?:\.\.?/)*[\w.-]+(?:/[\w.-]+)*\.md\b`)

// Names of documents that exist only beside the repository (the design notes it was written
// from); spelled in pieces so that this file does not name them itself.
var outside = []string{"spec" + "s/", "DESIGN" + ".md", "API" + ".md", "../" + "shared"}

// danglingRefs lists, for the .go and .md files under root, every reference to a document
// that is not a file of the tree, as "path:line: reference".
func danglingRefs(root string) ([]string, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	var bad []string
	seen := map[string]bool{}
	report := func(s string) {
		if !seen[s] {
			seen[s] = true
			bad = append(bad, s)
		}
	}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if ext := filepath.Ext(path); ext != ".go" && ext != ".md" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		for n, line := range strings.Split(string(b), "\n") {
			for _, o := range outside {
				if i := strings.Index(line, o); i >= 0 && (i == 0 || !isNameChar(line[i-1])) {
					report(fmt.Sprintf("%s:%d: %s", filepath.ToSlash(rel), n+1, o))
				}
			}
			for _, m := range mdRef.FindAllStringIndex(line, -1) {
				if m[0] > 0 && (strings.ContainsRune(`@:/.-`, rune(line[m[0]-1])) || isWordChar(line[m[0]-1])) {
					continue
				}
				ref := line[m[0]:m[1]]
				if !exists(root, filepath.Dir(path), ref) {
					report(fmt.Sprintf("%s:%d: %s", filepath.ToSlash(rel), n+1, ref))
				}
			}
		}
		return nil
	})
	return bad, err
}

// exists: ref names a file inside root, relative to the referring file's directory or to root.
func exists(root, dir, ref string) bool {
	for _, base := range []string{dir, root} {
		p := filepath.Join(base, filepath.FromSlash(ref))
		if p != root && !strings.HasPrefix(p, root+string(filepath.Separator)) {
			continue
		}
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return true
		}
	}
	return false
}

func isWordChar(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isNameChar(c byte) bool { return isWordChar(c) || c == '-' || c == '.' }

func TestNoDocumentOutsideTheRepository(t *testing.T) {
	bad, err := danglingRefs("..")
	require.NoError(t, err)
	require.Empty(t, bad, "documents named but not in the repository (a vendor's clone lacks them): write what the reader needs into docs/ and point there")
}

func TestDanglingRefs_FindsWhatIsMissing(t *testing.T) {
	root := t.TempDir()
	md := func(s string) string { return strings.ReplaceAll(s, "{md}", ".md") }
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(root, filepath.FromSlash(md(name)))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o700))
		require.NoError(t, os.WriteFile(p, []byte(md(text)), 0o600))
	}
	// Fixture names are written with {md} for the extension, so that this file names none.
	write("docs/here{md}", "# here\n")
	write("pkg/a.go", "package pkg\n\n// See docs/here{md} and ../docs/here{md}, and docs/gone{md}.\n")
	write("pkg/b.go", "package pkg\n\n// Per "+outside[0]+"x{md} and "+outside[1]+".\n")
	write("README{md}", "[ok](docs/here{md}) [no](missing{md}) https://example.org/remote{md} user@host{md} x-y{md}\n")
	write("up{md}", "[escapes](../outside{md})\n")
	write(".git/ignored{md}", "gone{md}\n")
	write("pkg/c.txt", "not{md}\n")

	bad, err := danglingRefs(root)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{
		md("pkg/a.go:3: docs/gone{md}"),
		"pkg/b.go:3: " + outside[0],
		md("pkg/b.go:3: " + outside[0] + "x{md}"),
		"pkg/b.go:3: " + outside[1],
		md("README{md}:1: missing{md}"),
		md("README{md}:1: x-y{md}"),
		md("up{md}:1: ../outside{md}"),
	}, bad)
}
