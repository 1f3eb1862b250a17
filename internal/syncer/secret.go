package syncer

// Secret is a credential value (Auth Token, refresh or access token, client
// secret). Its String and MarshalJSON methods say REDACTED, so a Secret that
// reaches a log line, an error message or JSON output never shows its value.
type Secret string

const redacted = "REDACTED"

// Reveal returns the plain value. Call it only where the value is sent to
// impact.com or encrypted.
func (s Secret) Reveal() string { return string(s) }

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return s.String() }

func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }

func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
