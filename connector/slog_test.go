package connector

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// syncBuffer is a bytes.Buffer safe for the handler's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines(t *testing.T) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(s.b.Bytes()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m))
		out = append(out, m)
	}
	return out
}

// TestSlog_FieldsAsZapEncodesThem logs the same line through zap's JSON encoder and through
// WithSlog's bridge to slog's JSON handler: same message, level and field values.
func TestSlog_FieldsAsZapEncodesThem(t *testing.T) {
	var zbuf, sbuf syncBuffer
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey, enc.CallerKey, enc.StacktraceKey = "", "", ""
	zl := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(&zbuf), zap.DebugLevel))
	var o options
	WithSlog(slog.New(slog.NewJSONHandler(&sbuf, &slog.HandlerOptions{Level: slog.LevelDebug})))(&o)
	fields := []zap.Field{zap.String("service", ServiceInsurability), zap.Int("pending", 3), zap.Bool("done", true),
		zap.Stringer("to", ModeFallback), zap.Error(errors.New("every endpoint failed")), zap.Strings("services", []string{"a", "b"})}
	for _, l := range []*zap.Logger{zl, o.logger} {
		l.With(zap.String("component", "test")).Warn("connector: service mode changed", fields...)
		l.Debug("connector: debug line", zap.Duration("age", 90*time.Second))
	}
	z, s := zbuf.lines(t), sbuf.lines(t)
	require.Len(t, z, 2)
	require.Len(t, s, 2)
	require.Equal(t, "warn", z[0]["level"])
	require.Equal(t, "WARN", s[0]["level"])
	require.Equal(t, "DEBUG", s[1]["level"])
	for _, k := range []string{"component", "service", "pending", "done", "to", "error", "services"} {
		require.Equal(t, z[0][k], s[0][k], k)
	}
	require.Equal(t, z[0]["msg"], s[0]["msg"])
	require.Equal(t, float64(90*time.Second), s[1]["age"], "a duration stays a duration (slog's JSON: nanoseconds)")
}

// TestSlog_ClientLogsThroughSlogWithoutPersonalData runs a client with WithSlog through an
// operator's fallback and back: the mode changes reach the slog handler with their fields,
// and no line at any level names a patient or an answer.
func TestSlog_ClientLogsThroughSlogWithoutPersonalData(t *testing.T) {
	p, id := testPlatform(t)
	var buf syncBuffer
	c, err := New(testConfig(t, p, id), WithSlog(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	require.NoError(t, err)
	defer c.Close()
	ctx := context.Background()
	pts := patients(p, 2)
	_, err = c.Insurability(ctx, InsurabilityRequest{SSIN: pts[0].SSIN})
	require.NoError(t, err)
	require.NoError(t, c.ActivateFallback(ServiceInsurability, "slog test"))
	res, err := c.Insurability(ctx, InsurabilityRequest{SSIN: pts[0].SSIN})
	require.NoError(t, err)
	require.Equal(t, SourceCache, res.Source)
	_, err = c.Insurability(ctx, InsurabilityRequest{SSIN: pts[1].SSIN})
	require.ErrorIs(t, err, ErrNotCached)
	require.NoError(t, c.EndFallback(ServiceInsurability))
	require.NoError(t, c.Close())

	var changes, tokens int
	for _, l := range buf.lines(t) {
		raw, _ := json.Marshal(l)
		for _, pt := range pts {
			require.NotContains(t, string(raw), pt.SSIN, "an SSIN was logged")
			if pt.PaymentApproval != "" {
				require.NotContains(t, string(raw), pt.PaymentApproval, "an answer was logged")
			}
		}
		switch l["msg"] {
		case "connector: service mode changed":
			if l["service"] == ServiceInsurability {
				changes++
				require.Equal(t, "INFO", l["level"])
				require.NotEmpty(t, l["from"])
				require.NotEmpty(t, l["to"])
				require.NotEmpty(t, l["cause"])
			}
		case "sts token obtained":
			tokens++
			require.NotEmpty(t, l["assertion_ref"], "the token is named by its reference, as with zap")
		}
	}
	require.GreaterOrEqual(t, changes, 2, "into fallback and out of it")
	require.Equal(t, 1, tokens)
}
