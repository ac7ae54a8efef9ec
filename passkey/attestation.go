package passkey

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"time"

	"github.com/go-webauthn/webauthn/metadata"
	"github.com/go-webauthn/webauthn/protocol"
)

// maxAttestationChain bounds the certificates of an attestation
// statement's x5c: an attestation certificate and a few CAs.
const maxAttestationChain = 8

// oidSubjectAltName is the subjectAltName extension, which a TPM's AIK
// certificate marks critical with content Go does not parse.
var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// attestationPreference is the conveyance registration asks for: "direct"
// when the attestation is checked against trust anchors, "none" otherwise.
func attestationPreference(roots *x509.CertPool) protocol.ConveyancePreference {
	if roots != nil {
		return protocol.PreferDirectAttestation
	}
	return protocol.PreferNoAttestation
}

// checkAttestation is the trust-anchor half of the attestation policy
// (PKY-13), run after go-webauthn verified att. go-webauthn has checked
// the statement's signature with its attestation certificate (x5c[0])
// and, for packed, that certificate's §8.2.1 requirements (version 3,
// subject C/O/OU/CN, not a CA, the AAGUID extension); without a metadata
// service it does not chain x5c to any root, which this does: x5c[0] must
// verify to one of roots through x5c[1:], every certificate valid at now.
// The reason it returns is short and holds no secret.
func checkAttestation(att *protocol.AttestationObject, roots *x509.CertPool, now time.Time) error {
	switch metadata.AuthenticatorAttestationType(att.Type) {
	case metadata.BasicFull, metadata.AttCA, metadata.AnonCA:
	default: // "none", self attestation (basic_surrogate), anything else
		return fmt.Errorf("attestation %q of type %q is not chained to a trust anchor", att.Format, att.Type)
	}
	raw, _ := att.AttStatement["x5c"].([]any)
	if len(raw) == 0 || len(raw) > maxAttestationChain {
		return fmt.Errorf("attestation %q without a certificate chain of 1 to %d certificates", att.Format, maxAttestationChain)
	}
	certs := make([]*x509.Certificate, len(raw))
	for i, r := range raw {
		der, ok := r.([]byte)
		if !ok {
			return errors.New("attestation certificate chain is not certificates")
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return errors.New("attestation certificate chain does not parse")
		}
		certs[i] = c
	}
	leaf := certs[0]
	if protocol.AttestationFormat(att.Format) == protocol.AttestationFormatTPM {
		// go-webauthn parsed and checked the AIK certificate's critical
		// subjectAltName (TPM manufacturer, model, version); x509 cannot.
		c := *leaf
		c.UnhandledCriticalExtensions = nil
		for _, id := range leaf.UnhandledCriticalExtensions {
			if !id.Equal(oidSubjectAltName) {
				c.UnhandledCriticalExtensions = append(c.UnhandledCriticalExtensions, id)
			}
		}
		leaf = &c
	}
	opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool(), CurrentTime: now}
	for _, c := range certs[1:] {
		opts.Intermediates.AddCert(c)
	}
	// Attestation certificates carry no TLS key usage: any extended key
	// usage (or none) is accepted, as the formats define their own (the
	// TPM's AIK usage go-webauthn checks).
	opts.KeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageAny}
	if _, err := leaf.Verify(opts); err != nil {
		var inv x509.CertificateInvalidError
		if errors.As(err, &inv) && inv.Reason == x509.Expired {
			return errors.New("attestation certificate chain expired or not yet valid")
		}
		return errors.New("attestation certificate chain does not verify to a configured root")
	}
	return nil
}
