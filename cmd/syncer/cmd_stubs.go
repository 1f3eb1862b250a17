package main

import (
	"context"
	"errors"
	"io"
)

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("run: not implemented yet")
}

func cmdConnect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("connect: not implemented yet")
}

func cmdKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("keys: not implemented yet")
}

type metrics struct{}

func (m *metrics) response(any, any, int) {}
func (m *metrics) unknownField(any, any)  {}

func newOAuth(a *app) (oauthTransports, error) { return nil, errors.New("oauth: not implemented yet") }
