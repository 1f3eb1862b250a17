package main

import "net/http"

func (a *app) statusPage(w http.ResponseWriter, r *http.Request) { http.Error(w, "not yet", 501) }
