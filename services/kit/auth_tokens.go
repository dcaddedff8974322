package kit

import (
	"context"
	"errors"

	"github.com/msctl/msctl/services/kit/auth"
	"github.com/msctl/msctl/services/kit/client"
)

// UserTokens returns a verifier of the users' bearer tokens, for a service
// whose routes act for a user: the gateway forwards the token unchanged and
// the service checks it itself. Its keys come from cfg.Service's JWKS
// through the registry, cached and refreshed in the background.
//
// The service is not ready until the first keys arrived: a new instance
// that took traffic without them could only refuse every customer. Once
// fetched, keys stay cached through outages of the users service, so
// readiness depends on it only at start.
func (s *Service) UserTokens(cfg auth.Config) *auth.Verifier {
	keys := auth.NewKeyCache(auth.ClientJWKS{Client: s.Upstream(cfg.Service, client.Options{})}, cfg.MinRefresh, s.Log)
	s.AddCheck("jwks", func(context.Context) error {
		if keys.Len() == 0 {
			return errors.New("no token keys fetched from " + cfg.Service + " yet")
		}
		return nil
	})
	s.Go(func(ctx context.Context) error { return keys.Run(ctx, cfg.Refresh) })
	return auth.NewVerifier(keys, cfg.Issuer, cfg.Audience)
}
