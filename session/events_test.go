package session_test

import "strings"

// logged reports whether the text-handler log holds a record of event
// whose line also holds every one of attrs ("key=value").
func logged(logs, event string, attrs ...string) bool {
	for line := range strings.Lines(logs) {
		if !strings.Contains(line, " msg="+event+" ") && !strings.HasSuffix(strings.TrimSpace(line), " msg="+event) {
			continue
		}
		ok := true
		for _, a := range attrs {
			if !strings.Contains(line, " "+a) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}
