package connector

import (
	"context"
	"log/slog"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// WithSlog sets a log/slog logger instead of a zap logger (WithLogger): every layer's lines
// (connector, service list, breakers, token, store) reach l's handler with the same
// messages, levels and fields as with zap (a zap.Duration stays a time.Duration, a zap.Error
// is the error's text under "error"), so the same redaction holds: no patient identifier or
// answer in any line. Given both, the last option wins.
func WithSlog(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = zap.New(slogCore{h: l.Handler()})
		}
	}
}

// slogCore is a zapcore.Core writing to a slog.Handler. Safe for concurrent use when the
// handler is, as slog requires of handlers.
type slogCore struct{ h slog.Handler }

func slogLevel(l zapcore.Level) slog.Level {
	switch {
	case l <= zapcore.DebugLevel:
		return slog.LevelDebug
	case l == zapcore.InfoLevel:
		return slog.LevelInfo
	case l == zapcore.WarnLevel:
		return slog.LevelWarn
	}
	return slog.LevelError + slog.Level(l-zapcore.ErrorLevel)
}

// Enabled implements zapcore.LevelEnabler.
func (c slogCore) Enabled(l zapcore.Level) bool {
	return c.h.Enabled(context.Background(), slogLevel(l))
}

// With implements zapcore.Core.
func (c slogCore) With(fs []zapcore.Field) zapcore.Core {
	if len(fs) == 0 {
		return c
	}
	return slogCore{h: c.h.WithAttrs(slogAttrs(fs))}
}

// Check implements zapcore.Core.
func (c slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

// Write implements zapcore.Core.
func (c slogCore) Write(e zapcore.Entry, fs []zapcore.Field) error {
	r := slog.NewRecord(e.Time, slogLevel(e.Level), e.Message, 0)
	if e.LoggerName != "" {
		r.AddAttrs(slog.String("logger", e.LoggerName))
	}
	r.AddAttrs(slogAttrs(fs)...)
	return c.h.Handle(context.Background(), r)
}

// Sync implements zapcore.Core.
func (slogCore) Sync() error { return nil }

// slogAttrs turns zap fields into slog attributes, in order, through zap's own encoding of
// each field (so a field shows the same value in both).
func slogAttrs(fs []zapcore.Field) []slog.Attr {
	enc := zapcore.NewMapObjectEncoder()
	out := make([]slog.Attr, 0, len(fs))
	for _, f := range fs {
		if f.Type == zapcore.SkipType {
			continue
		}
		f.AddTo(enc)
		v, ok := enc.Fields[f.Key]
		if !ok {
			continue
		}
		out = append(out, slog.Any(f.Key, v))
		if f.Type == zapcore.ErrorType {
			if verbose, ok := enc.Fields[f.Key+"Verbose"]; ok {
				out = append(out, slog.Any(f.Key+"Verbose", verbose))
			}
		}
	}
	return out
}
