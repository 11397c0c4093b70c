package saml

import "strings"

// Forget drops the cached service-provider configurations of a tenant
// ("" for every tenant), so the next request reads them from the store. A
// cluster node calls it when another node changed a client (kernel/notify
// TopicClients), so an SP's new settings are in force everywhere within a
// notification's trip rather than after the cache's lifetime.
func (s *Service) Forget(tenantID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tenantID == "" {
		clear(s.sps)
		return
	}
	for ref := range s.sps {
		if strings.HasPrefix(ref, tenantID+"\x00") {
			delete(s.sps, ref)
		}
	}
}
