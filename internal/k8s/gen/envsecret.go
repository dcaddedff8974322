package gen

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/msctl/msctl/internal/redact"
	"github.com/msctl/msctl/internal/secrets"
)

// SecretsName names the Secret holding a service's secret env values: the
// secrets msctl derives for it (internal/secrets) and the values of its
// env (msctl.yaml, the .env files) that look secret (redact.Parts). Its env
// refers to them, so they appear in no Deployment, no pod spec and no
// exported base.
func SecretsName(service string) string { return service + "-secrets" }

// SecretsHashAnnotation on a service's pod template changes with the
// values in its secrets' Secret, so that applying new ones rolls the
// Deployment.
const SecretsHashAnnotation = "msctl.dev/secrets-hash"

// secretEnvKeys are the names of s.Env whose values go to its Secret.
func secretEnvKeys(s ServiceSpec) []string {
	var keys []string
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		if secrets.IsEnv(k) || len(redact.Parts(k, s.Env[k])) > 0 {
			keys = append(keys, k)
		}
	}
	return keys
}

// serviceSecrets returns s's secrets' Secret, nil when its env holds no
// secret.
func (g *generator) serviceSecrets(s ServiceSpec) *corev1.Secret {
	keys := secretEnvKeys(s)
	if len(keys) == 0 {
		return nil
	}
	data := make(map[string][]byte, len(keys))
	for _, k := range keys {
		data[k] = []byte(s.Env[k])
	}
	// Labelled as the service's own, like its Deployment: the runtime
	// applies a service's objects by that label.
	meta := g.meta(SecretsName(s.Name), ComponentService)
	meta.Labels = g.labels(s.Name, ComponentService)
	return &corev1.Secret{TypeMeta: typeSecret, ObjectMeta: meta, Type: corev1.SecretTypeOpaque, Data: data}
}

// secretsHash identifies the values of s's secrets' Secret ("" without
// one).
func secretsHash(s ServiceSpec) string {
	keys := secretEnvKeys(s)
	if len(keys) == 0 {
		return ""
	}
	h := sha256.New()
	for _, k := range keys {
		h.Write([]byte(k + "\x00" + s.Env[k] + "\x00"))
	}
	return hex.EncodeToString(h.Sum(nil))[:10]
}
