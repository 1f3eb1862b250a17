package impactsim

import "strings"

// takeFault pops the first queued fault matching the request. Callers hold a.ctl.
func (c *control) takeFault(resource, uri string) (Fault, bool) {
	for k := range c.faults {
		f := &c.faults[k]
		m := f.Match
		if m != "" && !strings.EqualFold(m, resource) && !(strings.HasPrefix(m, "/") && strings.Contains(uri, m)) {
			continue
		}
		out := *f
		f.Times--
		if f.Times <= 0 {
			c.faults = append(c.faults[:k], c.faults[k+1:]...)
		}
		return out, true
	}
	return Fault{}, false
}
