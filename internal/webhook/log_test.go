package webhook

import (
	"go.uber.org/zap/zapcore"
)

type funcSyncer func(string)

func (f funcSyncer) Write(p []byte) (int, error) { f(string(p)); return len(p), nil }
func (f funcSyncer) Sync() error                 { return nil }

func zapcoreFor(f func(string)) zapcore.Core {
	return zapcore.NewCore(zapcore.NewJSONEncoder(zapcore.EncoderConfig{MessageKey: "msg"}), funcSyncer(f), zapcore.DebugLevel)
}
