package admin

import (
	"github.com/latchid/latch/kernel/fault"
)

// checkTenantSettings validates the settings a tenant request sets (none:
// nothing to check) with Deps.CheckSettings, so that a setting a front
// door could not use later (a password policy whose pattern is not a
// regular expression) is a 400 naming it now rather than a failure at
// every use.
func (a *API) checkTenantSettings(in tenantInput) error {
	if in.Settings == nil || a.d.CheckSettings == nil {
		return nil
	}
	err := a.d.CheckSettings(*in.Settings)
	if err == nil {
		return nil
	}
	if f := fault.From(err); f.Code == fault.CodeInvalidRequest {
		if f.Field == "" {
			return f.WithField("settings")
		}
		return f
	}
	return invalid("settings", "%s", err.Error())
}
