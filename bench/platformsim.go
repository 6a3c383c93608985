package bench

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"
)

// Platformsim is examples/platformsim running in its own process, so that its CPU is not
// the client's.
type Platformsim struct {
	Platform
	cmd  *exec.Cmd
	done chan error
}

// StartPlatformsim builds examples/platformsim into dir, starts it with its files in dir and
// waits until it serves. Stop it with Stop.
func StartPlatformsim(ctx context.Context, dir string) (*Platformsim, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(dir, "platformsim")
	build := exec.CommandContext(ctx, goBin, "build", "-o", bin, "github.com/ehgate/ehgate/examples/platformsim")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("bench: building platformsim: %v\n%s", err, out)
	}
	files := filepath.Join(dir, "files")
	if err := os.MkdirAll(files, 0o700); err != nil {
		return nil, err
	}
	const password = "bench"
	cmd := exec.Command(bin, "-dir", files, "-patients", "60", "-seed", "1", "-password", password, "-control", "127.0.0.1:0")
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Platformsim{cmd: cmd, done: make(chan error, 1)}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
		s.done <- cmd.Wait()
	}()
	got := map[string]string{}
	timeout := time.NewTimer(60 * time.Second)
	defer timeout.Stop()
	for got["control"] == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				return nil, errors.New("bench: platformsim ended before serving")
			}
			if f := strings.Fields(l); len(f) >= 2 {
				got[f[0]] = l
			}
		case <-timeout.C:
			go func() {
				for range lines {
				}
			}()
			s.Stop()
			return nil, errors.New("bench: platformsim did not start within 60 s")
		}
	}
	go func() { // keep reading, so the simulator never blocks on its output
		for range lines {
		}
	}()
	if err := s.fill(got, password); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

var nihiiRE = regexp.MustCompile(`NIHII-PHARMACY (\d+)`)

// fill reads the addresses and files platformsim printed ("name value [comment]" lines).
func (s *Platformsim) fill(lines map[string]string, password string) error {
	field := func(name string) string {
		if f := strings.Fields(lines[name]); len(f) >= 2 {
			return f[1]
		}
		return ""
	}
	var err error
	pool := func(name string) *x509.CertPool {
		if err != nil {
			return nil
		}
		var p *x509.CertPool
		p, err = certPool(field(name))
		return p
	}
	s.ServiceListURL = field("servicelist")
	s.StatusFeedURL = field("statusfeed")
	s.TLSRoots = pool("ca")
	s.ListRoots = pool("servicelist-ca")
	s.STSRoots = pool("sts-cert")
	if err != nil {
		return err
	}
	s.P12File, s.Password = field("pharmacy"), password
	m := nihiiRE.FindStringSubmatch(lines["pharmacy"])
	if m == nil || s.ServiceListURL == "" || s.P12File == "" {
		return fmt.Errorf("bench: unexpected platformsim output: %q", lines)
	}
	s.NIHII = m[1]
	raw, err := os.ReadFile(field("patients"))
	if err != nil {
		return err
	}
	var patients []struct{ SSIN, Expected string }
	if err := json.Unmarshal(raw, &patients); err != nil {
		return fmt.Errorf("bench: patients.json: %w", err)
	}
	for _, p := range patients {
		if p.Expected == "insured" {
			s.Patients = append(s.Patients, p.SSIN)
		}
	}
	if len(s.Patients) == 0 {
		return errors.New("bench: platformsim lists no insured patient")
	}
	return nil
}

func certPool(file string) (*x509.CertPool, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	p := x509.NewCertPool()
	for {
		var b *pem.Block
		b, raw = pem.Decode(raw)
		if b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("bench: %s: %w", file, err)
		}
		p.AddCert(c)
	}
	return p, nil
}

// Stop ends the simulator (SIGINT, then a kill after 5 s) and waits for it.
func (s *Platformsim) Stop() {
	if s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}
