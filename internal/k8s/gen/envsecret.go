package gen

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/msctl/msctl/internal/secret"
)

// EnvSecretName is the Secret holding the secret values of one service's
// env (secret.Parts decides which: tokens, passwords, URLs with one), so
// that they are in no Deployment or pod spec that `kubectl get -o yaml`,
// `describe` or an exported base shows.
func EnvSecretName(service string) string { return service + "-env" }

// EnvHashAnnotation on a service's pod template changes with the values
// in its env Secret, so that applying new ones rolls the Deployment.
const EnvHashAnnotation = "msctl.dev/env-hash"

// secretEnvKeys are the names of s.Env whose values go to its env Secret.
func secretEnvKeys(s ServiceSpec) []string {
	var keys []string
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		if len(secret.Parts(k, s.Env[k])) > 0 {
			keys = append(keys, k)
		}
	}
	return keys
}

// envSecret is s's env Secret, nil when its env holds no secret.
func (g *generator) envSecret(s ServiceSpec) *corev1.Secret {
	keys := secretEnvKeys(s)
	if len(keys) == 0 {
		return nil
	}
	data := make(map[string][]byte, len(keys))
	for _, k := range keys {
		data[k] = []byte(s.Env[k])
	}
	return &corev1.Secret{
		TypeMeta: typeSecret, ObjectMeta: g.meta(EnvSecretName(s.Name), ComponentService),
		Type: corev1.SecretTypeOpaque, Data: data,
	}
}

// envHash identifies the values of s's env Secret ("" without one).
func envHash(s ServiceSpec) string {
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
