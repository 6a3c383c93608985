package cache_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ehgate/ehgate/cache"
	"github.com/stretchr/testify/require"
)

func TestStore_ExportImportRoundTrip(t *testing.T) {
	clk := newTestClock()
	srcCfg := fastReplay(testConfig(t.TempDir()))
	srcCfg.Outbox.MaxElapsed = 5 * time.Millisecond
	src := openTest(t, srcCfg, cache.WithClock(clk.Now))
	require.NoError(t, src.Put(bg, cache.FunctionInsurability, ssin, []byte("<answer regime=\"elevated\"/>")))
	clk.Advance(time.Hour)
	certEnd := clk.Now().Add(48 * time.Hour)
	require.NoError(t, src.Put(bg, cache.FunctionETK, "NIHII-PHARMACY=12345678", []byte{0, 1, 2, 255}, cache.NotAfter(certEnd)))
	require.NoError(t, src.Put(bg, cache.FunctionToken, "pharmacy-1", nil))
	ob := src.Outbox()
	for _, k := range []string{"w1", "w2", "w3", "bad"} {
		part := "p"
		if k == "bad" {
			part = "q"
		}
		require.NoError(t, ob.Enqueue(bg, cache.Message{IdempotencyKey: k, Partition: part, Service: "svc", Payload: []byte("payload " + k)}))
		clk.Advance(time.Minute)
	}
	_, err := ob.Replay(bg, func(ctx context.Context, m cache.Message) error {
		if m.IdempotencyKey == "bad" {
			return cache.Permanent(errors.New("rejected: code 400"))
		}
		return errors.New("still down") // the others stay pending
	})
	require.Error(t, err)
	clk.Advance(time.Minute)

	var buf bytes.Buffer
	res, err := src.Export(bg, &buf)
	require.NoError(t, err)
	require.Equal(t, cache.ExportResult{Answers: 3, Outbox: 3, DeadLetters: 1}, res)

	// The documented schema.
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 1+3+3+1+1)
	var header, first, end map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &header))
	require.Equal(t, "header", header["type"])
	require.Equal(t, cache.ExportFormat, header["format"])
	require.Equal(t, "pharmacy-1", header["tenant"])
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &end))
	require.Equal(t, map[string]any{"type": "end", "answers": 3.0, "outbox": 3.0, "dead_letters": 1.0, "skipped": 0.0}, end)
	var types []string
	for _, l := range lines[1 : len(lines)-1] {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m))
		types = append(types, m["type"].(string))
		if m["key"] == ssin {
			first = m
		}
	}
	require.Equal(t, []string{"answer", "answer", "answer", "outbox", "outbox", "outbox", "dead_letter"}, types)
	require.Equal(t, "insurability", first["function"])
	require.Equal(t, "PGFuc3dlciByZWdpbWU9ImVsZXZhdGVkIi8+", first["value"])
	require.Contains(t, buf.String(), `"reason":"rejected: code 400"`)

	// Import into another tenant under another key.
	cfg := fastReplay(testConfig(t.TempDir()))
	cfg.Tenant, cfg.Keys = "copy", []cache.Key{testKey("other", 5)}
	dst := openTest(t, cfg, cache.WithClock(clk.Now))
	res, err = dst.Import(bg, bytes.NewReader(buf.Bytes()))
	require.NoError(t, err)
	require.Equal(t, cache.ExportResult{Answers: 3, Outbox: 3, DeadLetters: 1}, res)

	e, err := dst.Get(bg, cache.FunctionInsurability, ssin)
	require.NoError(t, err)
	require.Equal(t, `<answer regime="elevated"/>`, string(e.Value))
	require.Equal(t, time.Hour+5*time.Minute, e.Age, "stored_at kept")
	e, err = dst.Get(bg, cache.FunctionETK, "NIHII-PHARMACY=12345678")
	require.NoError(t, err)
	require.Equal(t, []byte{0, 1, 2, 255}, e.Value)
	require.Equal(t, certEnd, e.NotAfter.UTC())
	require.Equal(t, 3, dst.Outbox().Pending())
	require.Equal(t, 5*time.Minute, dst.Outbox().OldestAge(), "enqueued_at kept")
	dls, err := dst.Outbox().DeadLetters(bg)
	require.NoError(t, err)
	require.Len(t, dls, 1)
	require.Equal(t, "rejected: code 400", dls[0].Reason)
	require.Equal(t, 1, dls[0].Attempts)

	// Exporting the copy gives the same content (apart from header and seq numbers).
	var buf2 bytes.Buffer
	_, err = dst.Export(bg, &buf2)
	require.NoError(t, err)
	require.Equal(t, withoutVolatile(t, buf.String()), withoutVolatile(t, buf2.String()))

	// Importing again adds nothing new: same answers are not older, pending keys dedup.
	res, err = dst.Import(bg, bytes.NewReader(buf.Bytes()))
	require.NoError(t, err)
	require.Equal(t, 3, res.Answers, "equal stored_at rewrites")
	require.Equal(t, 0, res.Outbox)
	require.Equal(t, 3, dst.Outbox().Pending())

	var order []string
	_, err = dst.Outbox().Replay(bg, func(ctx context.Context, m cache.Message) error {
		order = append(order, m.IdempotencyKey)
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, []string{"w1", "w2", "w3"}, order)
}

func withoutVolatile(t *testing.T, export string) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(strings.NewReader(export))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m))
		if m["type"] == "header" {
			continue
		}
		delete(m, "seq")
		b, err := json.Marshal(m)
		require.NoError(t, err)
		out = append(out, string(b))
	}
	return out
}

func TestStore_ImportRejectsBadInput(t *testing.T) {
	st := openTest(t, testConfig(t.TempDir()))
	header := `{"type":"header","format":"ehgate-cache-export","version":1}` + "\n"
	answer := `{"type":"answer","function":"insurability","key":"k","value":"dg==","stored_at":"2026-11-23T09:00:00Z"}` + "\n"
	cases := map[string]struct {
		in   string
		want error
		line string
	}{
		"empty":              {"", cache.ErrInvalid, ""},
		"no header":          {answer, cache.ErrInvalid, "line 1"},
		"bad json":           {header + "{nope\n", cache.ErrInvalid, "line 2"},
		"unknown type":       {header + `{"type":"mystery"}` + "\n", cache.ErrInvalid, "line 2"},
		"answer without key": {header + `{"type":"answer","function":"insurability","stored_at":"2026-11-23T09:00:00Z"}` + "\n", cache.ErrInvalid, "line 2"},
		"bad base64":         {header + `{"type":"answer","function":"insurability","key":"k","value":"!!","stored_at":"2026-11-23T09:00:00Z"}` + "\n", cache.ErrInvalid, "line 2"},
		"truncated":          {header + answer, io.ErrUnexpectedEOF, "end line"},
		"line too long":      {header + `{"type":"answer","value":"` + strings.Repeat("A", 3<<20) + `"}` + "\n", cache.ErrInvalid, "line 2"},
		// A dead letter the store could not read back must not import.
		"attempts over 2^31": {header + answer + deadLetter(3000000000), cache.ErrInvalid, "line 3"},
		"negative attempts":  {header + deadLetter(-1), cache.ErrInvalid, "line 2"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := st.Import(bg, strings.NewReader(c.in))
			require.ErrorIs(t, err, c.want)
			require.Contains(t, err.Error(), c.line)
		})
	}
	// The truncated import still imported its answer; no dead letter came in.
	e, err := st.Get(bg, cache.FunctionInsurability, "k")
	require.NoError(t, err)
	require.Equal(t, "v", string(e.Value))
	require.Zero(t, st.Outbox().DeadLetterCount())

	// The largest count accepted is one the store reads back.
	res, err := st.Import(bg, strings.NewReader(header+deadLetter(1<<31)+`{"type":"end"}`+"\n"))
	require.NoError(t, err)
	require.Equal(t, 1, res.DeadLetters)
	dls, err := st.Outbox().DeadLetters(bg)
	require.NoError(t, err)
	require.Len(t, dls, 1)
	require.Equal(t, 1<<31, dls[0].Attempts)
	s, err := st.Stats(bg)
	require.NoError(t, err)
	require.Zero(t, s.AuthFailures)
}

func deadLetter(attempts int) string {
	return fmt.Sprintf(`{"type":"dead_letter","seq":1,"idempotency_key":"ref-1","partition":"p","service":"svc","payload":"dg==",`+
		`"enqueued_at":"2026-11-23T09:00:00Z","attempts":%d,"reason":"status 400","dead_at":"2026-11-23T09:01:00Z"}`+"\n", attempts)
}

func ExampleStore_Export() {
	dir, _ := os.MkdirTemp("", "ehgate-example")
	defer os.RemoveAll(dir)
	now := func() time.Time { return time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC) }
	st, err := cache.Open(cache.Config{
		Dir:    dir,
		Tenant: "pharmacy-1",
		Keys:   []cache.Key{{ID: "2026-11", Secret: bytes.Repeat([]byte{0x42}, 32)}},
	}, cache.WithClock(now))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()
	_ = st.Put(context.Background(), cache.FunctionInsurability, "85073003328", []byte("insured"))
	_ = st.Outbox().Enqueue(context.Background(), cache.Message{IdempotencyKey: "ref-1", Partition: "p1", Service: "mycarenettarification:v1", Payload: []byte("write")})

	res, err := st.Export(context.Background(), os.Stdout)
	fmt.Println(res.Answers, res.Outbox, err)
	// Output:
	// {"type":"header","format":"ehgate-cache-export","version":1,"tenant":"pharmacy-1","exported_at":"2026-11-23T09:00:00Z"}
	// {"type":"answer","function":"insurability","key":"85073003328","value":"aW5zdXJlZA==","stored_at":"2026-11-23T09:00:00Z"}
	// {"type":"outbox","seq":1,"idempotency_key":"ref-1","partition":"p1","service":"mycarenettarification:v1","payload":"d3JpdGU=","enqueued_at":"2026-11-23T09:00:00Z"}
	// {"type":"end","answers":1,"outbox":1,"dead_letters":0,"skipped":0}
	// 1 1 <nil>
}
