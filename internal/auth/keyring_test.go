package auth

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

func testKey(t testing.TB, fill byte) (Key, string) {
	t.Helper()
	b64 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{fill}, 32))
	k, err := ParseKey(b64)
	if err != nil {
		t.Fatal(err)
	}
	return k, b64
}

func testKeyring(t testing.TB, fill byte, older ...byte) *Keyring {
	t.Helper()
	p, _ := testKey(t, fill)
	var olds []Key
	for _, f := range older {
		k, _ := testKey(t, f)
		olds = append(olds, k)
	}
	kr, err := NewKeyring(p, olds...)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func TestParseKey(t *testing.T) {
	valid := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	tests := []struct {
		name, in string
		want     string // error substring; "" for success
	}{
		{"std", valid, ""},
		{"raw url", base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32)), ""},
		{"whitespace", " " + valid + "\n", ""},
		{"empty", "", "empty"},
		{"not base64", "this is definitely not base64!!", "not valid base64"},
		{"short", base64.StdEncoding.EncodeToString([]byte("sixteen bytes!!!")), "16 bytes, want exactly 32"},
		{"long", base64.StdEncoding.EncodeToString(make([]byte, 33)), "33 bytes"},
		{"zero", base64.StdEncoding.EncodeToString(make([]byte, 32)), "all zero"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParseKey(tt.in)
			if tt.want == "" {
				if err != nil || len(k.ID()) != 16 {
					t.Fatalf("ParseKey: %v (id %q)", err, k.ID())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if tt.in != "" && strings.Contains(err.Error(), strings.TrimSpace(tt.in)) {
				t.Fatal("error echoes the key")
			}
		})
	}
}

func TestKeyNeverPrintsBytes(t *testing.T) {
	k, b64 := testKey(t, 0xab)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%d", "%q"} {
		s := fmt.Sprintf(verb, k)
		if strings.Contains(s, "ab") && !strings.Contains(s, k.ID()) || strings.Contains(s, b64) || strings.Contains(s, "171") {
			t.Errorf("%s printed %q", verb, s)
		}
	}
	if k2, _ := testKey(t, 0xab); k2.ID() != k.ID() {
		t.Fatal("key id not stable")
	}
	if k3, _ := testKey(t, 0xac); k3.ID() == k.ID() {
		t.Fatal("different keys share an id")
	}
}

func TestParseKeyringReportsEveryProblem(t *testing.T) {
	_, good := testKey(t, 1)
	_, err := ParseKeyring("bad!", []string{good, "", "also bad"})
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	if !strings.Contains(msg, KeyEnv) || !strings.Contains(msg, "older encryption key 3") {
		t.Fatalf("error %q should name %s and older key 3", msg, KeyEnv)
	}
	kr, err := ParseKeyring(good, []string{"", good})
	if err != nil || len(kr.KeyIDs()) != 1 {
		t.Fatalf("ParseKeyring: %v, ids %v", err, kr.KeyIDs())
	}
}

func TestSealOpen(t *testing.T) {
	kr := testKeyring(t, 1)
	other := testKeyring(t, 2)
	const secret = syncer.Secret("refresh-token-value-0123456789")

	sealed, err := kr.Seal("acct-1", secret)
	if err != nil {
		t.Fatal(err)
	}
	if sealed.KeyID != kr.PrimaryID() || bytes.Contains(sealed.Ciphertext, []byte(secret)) {
		t.Fatalf("sealed %+v", sealed)
	}
	again, _ := kr.Seal("acct-1", secret)
	if bytes.Equal(again.Ciphertext, sealed.Ciphertext) {
		t.Fatal("two seals of the same secret are identical")
	}

	flip := func(i int) syncer.SealedSecret {
		c := bytes.Clone(sealed.Ciphertext)
		c[i] ^= 0x01
		return syncer.SealedSecret{KeyID: sealed.KeyID, Ciphertext: c}
	}
	tests := []struct {
		name    string
		kr      *Keyring
		account string
		s       syncer.SealedSecret
		want    error
	}{
		{"round trip", kr, "acct-1", sealed, nil},
		{"wrong key", other, "acct-1", sealed, ErrUnknownKey},
		{"relabelled key id", other, "acct-1", syncer.SealedSecret{KeyID: other.PrimaryID(), Ciphertext: sealed.Ciphertext}, ErrCorrupt},
		{"wrong account", kr, "acct-2", sealed, ErrCorrupt},
		{"tampered version", kr, "acct-1", flip(0), ErrCorrupt},
		{"tampered wrapped key", kr, "acct-1", flip(20), ErrCorrupt},
		{"tampered body", kr, "acct-1", flip(len(sealed.Ciphertext) - 20), ErrCorrupt},
		{"tampered tag", kr, "acct-1", flip(len(sealed.Ciphertext) - 1), ErrCorrupt},
		{"truncated", kr, "acct-1", syncer.SealedSecret{KeyID: sealed.KeyID, Ciphertext: sealed.Ciphertext[:len(sealed.Ciphertext)-1]}, ErrCorrupt},
		{"truncated header", kr, "acct-1", syncer.SealedSecret{KeyID: sealed.KeyID, Ciphertext: sealed.Ciphertext[:40]}, ErrCorrupt},
		{"empty", kr, "acct-1", syncer.SealedSecret{KeyID: sealed.KeyID}, ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.kr.Open(tt.account, tt.s)
			if tt.want == nil {
				if err != nil || got != secret {
					t.Fatalf("Open = %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if got != "" || strings.Contains(err.Error(), secret.Reveal()) {
				t.Fatalf("leak: %q / %v", got.Reveal(), err)
			}
		})
	}
	_, err = other.Open("acct-1", sealed)
	if want := "the secret was encrypted with key \"" + kr.PrimaryID() + "\", which SYNCER_ENCRYPTION_KEY does not hold"; !strings.Contains(err.Error(), want) {
		t.Fatalf("message %q lacks %q", err, want)
	}
}

func TestSealEmptySecret(t *testing.T) {
	kr := testKeyring(t, 1)
	s, err := kr.Seal("a", "")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := kr.Open("a", s); err != nil || got != "" {
		t.Fatalf("Open = %q, %v", got.Reveal(), err)
	}
	if _, err := kr.Seal("", "x"); err == nil {
		t.Fatal("sealing for an empty account id should fail")
	}
}

func TestRotation(t *testing.T) {
	oldKR := testKeyring(t, 1)
	sealed, _ := oldKR.Seal("acct-1", "tok")

	rotated := testKeyring(t, 2, 1) // new primary, old key kept for reading
	if got, err := rotated.Open("acct-1", sealed); err != nil || got != "tok" {
		t.Fatalf("old secret after rotation: %q, %v", got.Reveal(), err)
	}
	resealed, changed, err := rotated.Reseal("acct-1", sealed)
	if err != nil || !changed || resealed.KeyID != rotated.PrimaryID() {
		t.Fatalf("Reseal: %+v %v %v", resealed, changed, err)
	}
	again, changed, err := rotated.Reseal("acct-1", resealed)
	if err != nil || changed || !bytes.Equal(again.Ciphertext, resealed.Ciphertext) {
		t.Fatalf("second Reseal: changed=%v err=%v", changed, err)
	}

	newOnly := testKeyring(t, 2) // old key dropped
	if got, err := newOnly.Open("acct-1", resealed); err != nil || got != "tok" {
		t.Fatalf("resealed with new key only: %v", err)
	}
	if _, err := newOnly.Open("acct-1", sealed); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("unresealed secret: %v", err)
	}
	if _, _, err := newOnly.Reseal("acct-1", sealed); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Reseal without the old key: %v", err)
	}
}

// secretStore is an account store holding sealed secrets only: what
// ResealAll reads and writes.
type secretStore struct {
	syncer.AccountStore // the other methods are not called
	ids                 []string
	secrets             map[string]syncer.SealedSecret
	failSet             map[string]bool
	failList            error
}

func (s *secretStore) Accounts(context.Context) ([]syncer.Account, error) {
	var out []syncer.Account
	for _, id := range s.ids {
		out = append(out, syncer.Account{ID: id})
	}
	return out, s.failList
}

func (s *secretStore) Secret(_ context.Context, id string) (syncer.SealedSecret, error) {
	return s.secrets[id], nil
}

func (s *secretStore) SetSecret(_ context.Context, id string, sealed syncer.SealedSecret) error {
	if s.failSet[id] {
		return errors.New("store refused")
	}
	s.secrets[id] = sealed
	return nil
}

func TestResealAll(t *testing.T) {
	oldKR, otherKR, rotated := testKeyring(t, 1), testKeyring(t, 3), testKeyring(t, 2, 1)
	seal := func(kr *Keyring, id string) syncer.SealedSecret {
		s, err := kr.Seal(id, syncer.Secret("tok-"+id))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	store := &secretStore{
		ids: []string{"old", "current", "none", "unknown-key", "write-fails"},
		secrets: map[string]syncer.SealedSecret{
			"old": seal(oldKR, "old"), "current": seal(rotated, "current"),
			"unknown-key": seal(otherKR, "unknown-key"), "write-fails": seal(oldKR, "write-fails"),
		},
		failSet: map[string]bool{"write-fails": true},
	}
	r, err := rotated.ResealAll(t.Context(), store)
	if err != nil {
		t.Fatal(err)
	}
	if r.Changed != 1 || r.Same != 2 || len(r.Failed) != 2 {
		t.Fatalf("ResealAll = %+v, want 1 changed (old), 2 same (current, none), 2 failed", r)
	}
	if !errors.Is(r.Failed[0], ErrUnknownKey) || !strings.Contains(r.Failed[0].Error(), "unknown-key") {
		t.Errorf("first failure %v: want ErrUnknownKey naming account unknown-key", r.Failed[0])
	}
	if !strings.Contains(r.Failed[1].Error(), "account write-fails: store refused") {
		t.Errorf("second failure %v: want the store's error naming account write-fails", r.Failed[1])
	}
	if s := store.secrets["old"]; s.KeyID != rotated.PrimaryID() {
		t.Errorf("old secret still under key %s", s.KeyID)
	}
	newOnly := testKeyring(t, 2)
	if got, err := newOnly.Open("old", store.secrets["old"]); err != nil || got != "tok-old" {
		t.Errorf("resealed secret opens to %q, %v", got.Reveal(), err)
	}

	store.failList = errors.New("ClickHouse unreachable")
	if _, err := rotated.ResealAll(t.Context(), store); err == nil {
		t.Error("ResealAll hid the error listing the accounts")
	}
}

func TestNewKeyringRejectsUnset(t *testing.T) {
	if _, err := NewKeyring(Key{}); err == nil {
		t.Fatal("zero primary accepted")
	}
	p, _ := testKey(t, 1)
	if _, err := NewKeyring(p, Key{}); err == nil {
		t.Fatal("zero older key accepted")
	}
	if g := GenerateKey(); g.String() != "REDACTED" {
		t.Fatal("GenerateKey result prints")
	} else if _, err := ParseKey(g.Reveal()); err != nil {
		t.Fatalf("generated key does not parse: %v", err)
	}
}

func FuzzOpen(f *testing.F) {
	kr := testKeyring(f, 1, 2)
	sealed, _ := kr.Seal("acct", "some secret")
	f.Add(sealed.KeyID, sealed.Ciphertext, "acct")
	f.Add(sealed.KeyID, sealed.Ciphertext[:minSealed], "acct")
	f.Add("", []byte{}, "")
	f.Add(sealed.KeyID, []byte{1}, "acct")
	f.Fuzz(func(t *testing.T, keyID string, ct []byte, account string) {
		pt, err := kr.Open(account, syncer.SealedSecret{KeyID: keyID, Ciphertext: ct})
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnknownKey) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			if pt != "" {
				t.Fatal("plaintext returned with an error")
			}
			return
		}
		// Only a genuine ciphertext for the genuine account opens. (The
		// seed was sealed in the coordinating process with other random
		// nonces, so the bytes cannot be compared with sealed here.)
		if account != "acct" || keyID != sealed.KeyID || pt != "some secret" {
			t.Fatalf("forged ciphertext opened: %q", pt.Reveal())
		}
	})
}
