package cookbook_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A chapter's code is what runs: every ```go block that starts with "package main" is a
// complete program, extracted as is, built in a module of its own (which sees nothing of
// this package) and run; its output must equal the ```text block that follows it in the
// chapter. Every other ```go block of a chapter must be an excerpt of one of its programs.
// So a chapter cannot show code that does not compile, does not run, or prints something
// else than it says.

// program is one complete program of a chapter.
type program struct {
	chapter string // file name, e.g. 01-getting-started.md
	name    string // directory and binary name, e.g. ch01 or ch01-2
	line    int    // line of the opening fence
	source  string
	output  string // the ```text block that follows it
}

// chapter is what a chapter's Markdown holds.
type chapter struct {
	file      string
	programs  []program
	fragments []fragment // the other ```go blocks
}

type fragment struct {
	line   int
	source string
}

// fence is a fenced block of a Markdown file.
type fence struct {
	info string
	line int
	body string
}

func fences(text string) ([]fence, error) {
	var out []fence
	var cur *fence
	var body strings.Builder
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.HasPrefix(line, "```"):
			cur = &fence{info: strings.TrimSpace(strings.TrimPrefix(line, "```")), line: n}
			body.Reset()
		case cur != nil && strings.TrimSpace(line) == "```":
			cur.body = body.String()
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			body.WriteString(line)
			body.WriteByte('\n')
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("line %d: fence not closed", cur.line)
	}
	return out, sc.Err()
}

func readChapters(t *testing.T) []chapter {
	t.Helper()
	files, err := filepath.Glob("[0-9][0-9]-*.md")
	require.NoError(t, err)
	require.Len(t, files, 9, "chapters 01 to 09")
	var out []chapter
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		blocks, err := fences(string(data))
		require.NoError(t, err, f)
		ch := chapter{file: f}
		for i := 0; i < len(blocks); i++ {
			b := blocks[i]
			if b.info != "go" {
				continue
			}
			if !strings.HasPrefix(b.body, "package main\n") {
				ch.fragments = append(ch.fragments, fragment{line: b.line, source: b.body})
				continue
			}
			p := program{chapter: f, name: "ch" + f[:2], line: b.line, source: b.body}
			if len(ch.programs) > 0 {
				p.name += fmt.Sprintf("-%d", len(ch.programs)+1)
			}
			require.True(t, i+1 < len(blocks) && blocks[i+1].info == "text",
				"%s:%d: a program must be followed by a ```text block with what it prints", f, b.line)
			p.output = blocks[i+1].body
			ch.programs = append(ch.programs, p)
		}
		out = append(out, ch)
	}
	return out
}

// normalized returns the non-blank lines of src with their spaces collapsed, so that an
// excerpt may be indented or aligned differently from the program.
func normalized(src string) []string {
	var out []string
	for _, l := range strings.Split(src, "\n") {
		if l = strings.Join(strings.Fields(l), " "); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func containsRun(haystack, needle []string) bool {
	for i := 0; i+len(needle) <= len(haystack); i++ {
		match := true
		for j := range needle {
			if haystack[i+j] != needle[j] {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

// Every chapter shows at least one complete, gofmt-formatted program with its output, and
// every other Go block of it is taken from one of its programs.
func TestChapters_ShowCompletePrograms(t *testing.T) {
	for _, ch := range readChapters(t) {
		t.Run(ch.file, func(t *testing.T) {
			require.NotEmpty(t, ch.programs, "%s shows no complete program (a ```go block starting with package main)", ch.file)
			for _, p := range ch.programs {
				formatted, err := format.Source([]byte(p.source))
				require.NoError(t, err, "%s:%d", p.chapter, p.line)
				require.Equal(t, string(formatted), p.source, "%s:%d: the program is not gofmt-formatted", p.chapter, p.line)
				f, err := parser.ParseFile(token.NewFileSet(), "main.go", p.source, 0)
				require.NoError(t, err)
				require.NotNil(t, f.Scope.Lookup("main"), "%s:%d: no func main", p.chapter, p.line)
				for _, imp := range f.Imports {
					require.NotContains(t, imp.Path.Value, "/cookbook", "%s:%d: a program must not depend on the cookbook's tests", p.chapter, p.line)
				}
				require.NotEmpty(t, strings.TrimSpace(p.output), "%s:%d: empty output block", p.chapter, p.line)
			}
			for _, fr := range ch.fragments {
				found := false
				for _, p := range ch.programs {
					found = found || containsRun(normalized(p.source), normalized(fr.source))
				}
				require.True(t, found, "%s:%d: this Go block is not an excerpt of the chapter's program", ch.file, fr.line)
			}
		})
	}
}

func TestExcerpt_FindsDrift(t *testing.T) {
	prog := normalized("package main\n\nfunc main() {\n\tx := 1\n\ty   := 2\n}\n")
	require.True(t, containsRun(prog, normalized("x := 1\n    y := 2\n")))
	require.False(t, containsRun(prog, normalized("x := 1\ny := 3\n")))
	require.False(t, containsRun(prog, normalized("y := 2\nx := 1\n")))
}

// goCommand returns the go command to build the programs with.
func goCommand(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	t.Skip("no go command on the PATH: cannot build the chapters' programs")
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

var moduleLine = regexp.MustCompile(`(?m)^module .*$`)

var mainFunc = regexp.MustCompile(`(?m)^func main\(\) \{$`)

// pkgName is the Go package name of program name (ch01-2 → ch01_2).
func pkgName(name string) string { return strings.ReplaceAll(name, "-", "_") }

// writeModule writes the programs into a module of its own in dir that requires this
// repository through a replace directive, with the repository's requirements and go.sum. To
// link one binary instead of one per program (linking is most of the cost), each program
// becomes a package of its own whose main is renamed Main, the only two changes, and a
// dispatcher runs the program its first argument names.
func writeModule(t *testing.T, dir string, programs []program) {
	t.Helper()
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	require.NoError(t, err)
	require.True(t, moduleLine.Match(gomod))
	mod := moduleLine.ReplaceAllString(string(gomod), "module example.com/cookbookprograms") +
		"\nrequire github.com/ehgate/ehgate v0.0.0-00010101000000-000000000000\n" +
		"\nreplace github.com/ehgate/ehgate => " + filepath.ToSlash(root) + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte(mod), 0o644))
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644))

	var imports, cases strings.Builder
	for _, p := range programs {
		require.Len(t, mainFunc.FindAllStringIndex(p.source, -1), 1, "%s:%d: want one line \"func main() {\"", p.chapter, p.line)
		src := "package " + pkgName(p.name) + strings.TrimPrefix(p.source, "package main")
		src = mainFunc.ReplaceAllString(src, "func Main() {")
		require.NoError(t, os.MkdirAll(filepath.Join(dir, p.name), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, p.name, "main.go"), []byte(src), 0o644))
		fmt.Fprintf(&imports, "\t%s \"example.com/cookbookprograms/%s\"\n", pkgName(p.name), p.name)
		fmt.Fprintf(&cases, "\tcase %q:\n\t\t%s.Main()\n", p.name, pkgName(p.name))
	}
	dispatcher := "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n\n" + imports.String() + ")\n\n" +
		"func main() {\n\tswitch os.Args[1] {\n" + cases.String() +
		"\tdefault:\n\t\tfmt.Fprintln(os.Stderr, \"no program\", os.Args[1])\n\t\tos.Exit(2)\n\t}\n}\n"
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "cmd", "chapters"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "cmd", "chapters", "main.go"), []byte(dispatcher), 0o644))
}

// The chapters' programs, built once into one binary and run one after the other, print
// what their chapters say. Chapter 9's needs PostgreSQL: it runs when
// EHGATE_TEST_POSTGRES_URL is set (./test.sh starts a server) and is skipped otherwise.
func TestChapters_ProgramsRunAndPrintWhatTheChapterSays(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the chapters' programs are built and run without -short (about a minute)")
	}
	var programs []program
	for _, ch := range readChapters(t) {
		programs = append(programs, ch.programs...)
	}
	require.NotEmpty(t, programs)
	goCmd := goCommand(t)
	dir := t.TempDir()
	writeModule(t, dir, programs)
	exe := filepath.Join(dir, "chapters")
	if runtime.GOOS == "windows" {
		exe += ".exe"
	}

	// Built as the test binary was (with or without -race), the programs reuse the packages
	// the go command has already compiled for the tests: only the programs and the links cost.
	env := append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
	args := []string{"build", "-o", exe}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command(goCmd, append(args, "./cmd/chapters")...)
	build.Dir, build.Env = dir, env
	start := time.Now()
	out, err := build.CombinedOutput()
	require.NoError(t, err, "building the chapters' programs:\n%s", out)
	t.Logf("built %d programs in %s", len(programs), time.Since(start).Round(time.Second))

	for _, p := range programs {
		t.Run(p.name, func(t *testing.T) {
			runEnv := os.Environ()
			if strings.Contains(p.source, "EHGATE_DATABASE_URL") {
				url := os.Getenv("EHGATE_TEST_POSTGRES_URL")
				if url == "" {
					t.Skipf("%s needs PostgreSQL: EHGATE_TEST_POSTGRES_URL is not set (./test.sh starts a server)", p.chapter)
				}
				runEnv = append(runEnv, "EHGATE_DATABASE_URL="+url)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, exe, p.name)
			cmd.Env = runEnv
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			start := time.Now()
			err := cmd.Run()
			require.NoError(t, err, "%s:%d: the program failed\nstdout:\n%s\nstderr:\n%s", p.chapter, p.line, stdout.String(), stderr.String())
			require.Equal(t, p.output, stdout.String(), "%s:%d: the program printed something else than its chapter says\nstderr:\n%s", p.chapter, p.line, stderr.String())
			t.Logf("%s:%d ran in %s and printed:\n%s", p.chapter, p.line, time.Since(start).Round(100*time.Millisecond), stdout.String())
		})
	}
}
