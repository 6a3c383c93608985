package platformtest_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beevik/etree"
	"github.com/stretchr/testify/require"

	"github.com/ehgate/ehgate/platformtest"
)

// xmllintPath returns xmllint's path or skips the test.
func xmllintPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("xmllint")
	if err != nil {
		t.Skip("xmllint not installed (Debian package libxml2-utils): the schema judge is unavailable")
	}
	return p
}

// xsdPath is the path of a schema's file in this package's testdata.
func xsdPath(s platformtest.Schema) string {
	return filepath.Join("testdata", "xsd", filepath.FromSlash(s.File()))
}

// xmllintVerdicts validates every file with `xmllint --schema` in one run
// and returns, per file, whether it validates.
func xmllintVerdicts(t *testing.T, s platformtest.Schema, files []string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	const batch = 400
	for i := 0; i < len(files); i += batch {
		part := files[i:min(i+batch, len(files))]
		cmd := exec.Command(xmllintPath(t), append([]string{"--noout", "--nonet", "--schema", xsdPath(s)}, part...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		_ = cmd.Run() // exit status 3 when a file fails: read the verdict lines
		sc := bufio.NewScanner(&stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasSuffix(line, " validates"):
				out[strings.TrimSuffix(line, " validates")] = true
			case strings.HasSuffix(line, " fails to validate"):
				out[strings.TrimSuffix(line, " fails to validate")] = false
			}
		}
		for _, f := range part {
			if _, ok := out[f]; !ok {
				t.Fatalf("xmllint gave no verdict for %s:\n%s", f, stderr.String())
			}
		}
	}
	return out
}

// xmllintValidate validates one document with xmllint and returns its
// diagnostics when it does not validate.
func xmllintValidate(t *testing.T, s platformtest.Schema, doc []byte) (bool, string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "doc.xml")
	require.NoError(t, os.WriteFile(f, doc, 0o600))
	cmd := exec.Command(xmllintPath(t), "--noout", "--nonet", "--schema", xsdPath(s), f)
	out, err := cmd.CombinedOutput()
	return err == nil, string(out)
}

// samples are valid requests written from the schemas.
var samples = []struct {
	file   string
	schema platformtest.Schema
}{
	{"insurability-request.xml", platformtest.SchemaInsurability},
	{"genins-request.xml", platformtest.SchemaGenericInsurability},
	{"etk-request.xml", platformtest.SchemaETK},
	{"ehbox-request.xml", platformtest.SchemaEHealthBox},
}

func readSample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "messages", name))
	require.NoError(t, err)
	return b
}

func TestSchema_SamplesValidate(t *testing.T) {
	for _, s := range samples {
		t.Run(s.file, func(t *testing.T) {
			doc := readSample(t, s.file)
			require.NoError(t, platformtest.Validate(s.schema, doc))
			ok, diag := xmllintValidate(t, s.schema, doc)
			require.True(t, ok, diag)
		})
	}
}

// mutant is a changed copy of a valid message.
type mutant struct {
	name string
	doc  []byte
}

// mutate returns the systematic mutants of doc: for every element, dropped,
// moved after its next sibling, duplicated, renamed (local name, and moved
// to another namespace), and for every leaf, its text replaced by values of
// other types; for every attribute, dropped, and an unknown one added.
func mutate(t *testing.T, doc []byte) []mutant {
	t.Helper()
	base := etree.NewDocument()
	require.NoError(t, base.ReadFromBytes(doc))
	var paths [][]int
	var walk func(el *etree.Element, p []int)
	walk = func(el *etree.Element, p []int) {
		paths = append(paths, append([]int(nil), p...))
		for i, c := range el.ChildElements() {
			walk(c, append(p, i))
		}
	}
	walk(base.Root(), nil)
	find := func(d *etree.Document, p []int) *etree.Element {
		el := d.Root()
		for _, i := range p {
			el = el.ChildElements()[i]
		}
		return el
	}
	var out []mutant
	add := func(name string, change func(el *etree.Element) bool, p []int) {
		d := base.Copy()
		if !change(find(d, p)) {
			return
		}
		b, err := d.WriteToBytes()
		require.NoError(t, err)
		out = append(out, mutant{name: fmt.Sprintf("%v %s", p, name), doc: b})
	}
	retypes := []string{"", "x", "-1", "0", "1.5", "99999999999999", "999999999999999", "2026-02-30", "2026-12-02", "true", "P1D",
		"ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJKLMNOPQRSTUVWXYZ", "7001010013", "70010100134", "not base64!", "aGk=", " padded ", "PHARMACY"}
	for _, p := range paths {
		if len(p) > 0 {
			add("drop", func(el *etree.Element) bool { el.Parent().RemoveChild(el); return true }, p)
			add("reorder", func(el *etree.Element) bool {
				parent := el.Parent()
				sib := parent.ChildElements()
				idx := p[len(p)-1]
				if idx+1 >= len(sib) {
					return false
				}
				parent.RemoveChild(el)
				parent.InsertChildAt(sib[idx+1].Index()+1, el)
				return true
			}, p)
			add("duplicate", func(el *etree.Element) bool {
				el.Parent().InsertChildAt(el.Index()+1, el.Copy())
				return true
			}, p)
		}
		add("rename", func(el *etree.Element) bool { el.Tag += "X"; return true }, p)
		add("renamespace", func(el *etree.Element) bool {
			if el.Space != "" {
				el.Space = ""
				return true
			}
			el.Space = "zz"
			el.CreateAttr("xmlns:zz", "urn:example:other")
			return true
		}, p)
		for _, v := range retypes {
			v := v
			add("retype "+fmt.Sprintf("%q", v), func(el *etree.Element) bool {
				if len(el.ChildElements()) > 0 {
					return false
				}
				el.SetText(v)
				return true
			}, p)
		}
		add("add-child", func(el *etree.Element) bool { el.CreateElement(el.Space + ":Unexpected"); return true }, p)
		add("add-attribute", func(el *etree.Element) bool { el.CreateAttr("Unknown", "1"); return true }, p)
		el := find(base, p)
		for _, a := range el.Attr {
			if a.Space == "xmlns" || a.Key == "xmlns" {
				continue
			}
			key := a.FullKey()
			add("drop-attribute "+key, func(el *etree.Element) bool { el.RemoveAttr(key); return true }, p)
			for _, v := range []string{"", "x", "12345678901234", "P1"} {
				v := v
				add("attribute "+key+"="+fmt.Sprintf("%q", v), func(el *etree.Element) bool { el.CreateAttr(key, v); return true }, p)
			}
		}
	}
	return out
}

// TestSchema_DifferentialAgainstXmllint mutates every sample request
// systematically and requires platformtest's verdict to equal xmllint's
// on every mutant.
func TestSchema_DifferentialAgainstXmllint(t *testing.T) {
	xmllintPath(t)
	for _, s := range samples {
		t.Run(s.file, func(t *testing.T) {
			mutants := mutate(t, readSample(t, s.file))
			dir := t.TempDir()
			files := make([]string, len(mutants))
			for i, m := range mutants {
				files[i] = filepath.Join(dir, fmt.Sprintf("m%04d.xml", i))
				require.NoError(t, os.WriteFile(files[i], m.doc, 0o600))
			}
			lint := xmllintVerdicts(t, s.schema, files)
			valid, disagree := 0, 0
			for i, m := range mutants {
				err := platformtest.Validate(s.schema, m.doc)
				if lint[files[i]] {
					valid++
				}
				if (err == nil) != lint[files[i]] {
					disagree++
					_, diag := xmllintValidate(t, s.schema, m.doc)
					t.Errorf("mutant %s: platformtest says %v, xmllint says valid=%v: %s", m.name, err, lint[files[i]], diag)
				}
			}
			t.Logf("%d mutants (%d valid, %d invalid per xmllint), %d disagreements", len(mutants), valid, len(mutants)-valid, disagree)
		})
	}
}
