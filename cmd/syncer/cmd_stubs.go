package main

import (
	"context"
	"errors"
	"io"
	"net/http"
)

func cmdConnect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("connect: not implemented yet")
}

func cmdKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("keys: not implemented yet")
}

func newOAuth(a *app) (oauthTransports, error) { return nil, errors.New("oauth: not implemented yet") }

func (a *app) statusPage(w http.ResponseWriter, r *http.Request) { http.Error(w, "not yet", 501) }

func (a *app) callbackPath() string { return "/oauth/callback" }
