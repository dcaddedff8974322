package kit

import (
	"context"

	"github.com/msctl/msctl/services/kit/auth"
	"github.com/msctl/msctl/services/kit/client"
)

// UserTokens returns a verifier of the users' bearer tokens, for a service
// whose routes act for a user: the gateway forwards the token unchanged and
// the service checks it itself. Its keys come from cfg.Service's JWKS
// through the registry, cached and refreshed in the background; the cache
// is returned too, for a readiness check that needs keys.
func (s *Service) UserTokens(cfg auth.Config) (*auth.Verifier, *auth.KeyCache) {
	keys := auth.NewKeyCache(auth.ClientJWKS{Client: s.Upstream(cfg.Service, client.Options{})}, cfg.MinRefresh, s.Log)
	s.Go(func(ctx context.Context) error { return keys.Run(ctx, cfg.Refresh) })
	return auth.NewVerifier(keys, cfg.Issuer, cfg.Audience), keys
}
