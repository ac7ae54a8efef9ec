package main

import (
	"html/template"
	"strings"
	"time"
	"unicode"
)

// templateFuncs are the functions every page's template may call.
//
// Times are shown in UTC, with the zone written out: the server does not
// know the reader's zone, and a time without one is a guess. Every time
// is also given in a <time datetime> element, which the stylesheet keeps
// on one line.
var templateFuncs = template.FuncMap{
	// when formats a time as "7 Dec 2026, 14:05 UTC" ("never" for the
	// zero time).
	"when": when,
	// clock formats a time of today as "14:05 UTC".
	"clock": timeOfDay,
	// isoTime is the time for a datetime attribute (RFC 3339, UTC).
	"isoTime": isoTime,
	// timeTag is a <time> element showing when(t).
	"timeTag": timeTag,
	// device is the short description of a User-Agent string: "Chrome
	// on Linux", "Safari on iPhone".
	"device": describeUA,
	// userAgent is a User-Agent string as it may be shown in full: valid
	// UTF-8, without control characters, at most maxUALen bytes.
	"userAgent": cleanUA,
}

// when formats t in UTC as "7 Dec 2026, 14:05 UTC", or "never" for the
// zero time (a passkey or authenticator not used yet).
func when(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2 Jan 2006, 15:04") + " UTC"
}

// timeOfDay formats t in UTC as "14:05 UTC": for times within minutes of now.
func timeOfDay(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("15:04") + " UTC"
}

// isoTime formats t in UTC for a datetime attribute, or "" for the zero
// time.
func isoTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// timeTag returns a <time> element that shows when(t); the zero time is
// the word "never", with no element.
func timeTag(t time.Time) template.HTML {
	if t.IsZero() {
		return "never"
	}
	// Both strings come from time layouts of digits, letters, spaces,
	// commas, colons and dashes: nothing to escape.
	return template.HTML(`<time datetime="` + isoTime(t) + `">` + when(t) + `</time>`)
}

// maxUALen bounds the User-Agent strings read: the session package keeps
// at most 256 bytes, but these functions take any string.
const maxUALen = 512

// describeUA returns a short description of the browser and system a
// User-Agent string names, such as "Chrome on Linux" or "Safari on
// iPhone", made only of fixed words (never of the string's own text, which
// anyone can choose): "Unknown browser" when it names none that it knows.
// It reads at most maxUALen bytes of ua.
func describeUA(ua string) string {
	if len(ua) > maxUALen {
		ua = ua[:maxUALen]
	}
	browser, system := uaBrowser(ua), uaSystem(ua)
	switch {
	case browser == "" && system == "":
		return "Unknown browser"
	case browser == "":
		return "A browser on " + system
	case system == "":
		return browser
	}
	return browser + " on " + system
}

// uaToken is a word of a User-Agent string and what it means. The first
// match in a list wins: browsers built on others name those too (Edge
// says Chrome and Safari, Chrome says Safari).
type uaToken struct{ token, name string }

var uaBrowsers = []uaToken{
	{"Edg/", "Edge"}, {"EdgA/", "Edge"}, {"EdgiOS/", "Edge"}, {"Edge/", "Edge"},
	{"OPR/", "Opera"}, {"OPiOS/", "Opera"}, {"Opera", "Opera"},
	{"SamsungBrowser/", "Samsung Internet"},
	{"Vivaldi/", "Vivaldi"},
	{"YaBrowser/", "Yandex Browser"},
	{"Firefox/", "Firefox"}, {"FxiOS/", "Firefox"},
	{"HeadlessChrome/", "Headless Chrome"},
	{"CriOS/", "Chrome"}, {"Chromium/", "Chromium"}, {"Chrome/", "Chrome"},
	{"Trident/", "Internet Explorer"}, {"MSIE ", "Internet Explorer"},
	{"Version/", "Safari"}, // with "Safari/" (checked below)
	{"curl/", "curl"}, {"Wget/", "Wget"},
	{"Go-http-client/", "a Go program"}, {"python-requests/", "a Python script"}, {"Python-urllib/", "a Python script"},
}

var uaSystems = []uaToken{
	{"iPhone", "iPhone"}, {"iPad", "iPad"}, {"iPod", "iPod"},
	{"Windows Phone", "Windows Phone"},
	{"Android", "Android"},
	{"CrOS", "ChromeOS"},
	{"Windows", "Windows"},
	{"Macintosh", "macOS"}, {"Mac OS X", "macOS"},
	{"FreeBSD", "FreeBSD"}, {"OpenBSD", "OpenBSD"},
	{"Linux", "Linux"}, {"X11", "Linux"},
}

func uaBrowser(ua string) string {
	for _, t := range uaBrowsers {
		if !strings.Contains(ua, t.token) {
			continue
		}
		if t.name == "Safari" && !strings.Contains(ua, "Safari/") {
			continue
		}
		return t.name
	}
	// Safari on iOS in an app's web view has no Version/.
	if strings.Contains(ua, "AppleWebKit/") && strings.Contains(ua, "Mobile/") && uaSystem(ua) != "" {
		return "Safari"
	}
	return ""
}

func uaSystem(ua string) string {
	for _, t := range uaSystems {
		if strings.Contains(ua, t.token) {
			return t.name
		}
	}
	return ""
}

// cleanUA returns ua as it may be shown in full: cut to maxUALen bytes,
// invalid UTF-8 replaced, control and format characters (such as the
// bidirectional overrides, which would turn the text shown around) as
// spaces. html/template escapes the rest.
func cleanUA(ua string) string {
	if len(ua) > maxUALen {
		ua = ua[:maxUALen]
	}
	ua = strings.ToValidUTF8(ua, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return ' '
		}
		return r
	}, ua)
}
