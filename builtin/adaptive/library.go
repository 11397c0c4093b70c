package adaptive

import (
	"crypto/sha256"
	"sync"

	"github.com/dop251/goja"
	"github.com/dop251/goja/parser"
)

// libCache keeps compiled tenant libraries by the hash of their source,
// so a library is compiled once however many logins load it.
type libCache struct {
	mu    sync.Mutex
	progs map[[32]byte]*goja.Program
}

const maxCachedLibs = 256

func (c *libCache) compile(name, src string) (*goja.Program, error) {
	key := sha256.Sum256([]byte(name + "\x00" + src))
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.progs[key]; ok {
		return p, nil
	}
	ast, err := parser.ParseFile(nil, "library:"+name, "(function(module, exports){"+src+"\n})", 0, parser.WithDisableSourceMaps)
	if err != nil {
		return nil, err
	}
	p, err := goja.CompileAST(ast, false)
	if err != nil {
		return nil, err
	}
	if c.progs == nil || len(c.progs) >= maxCachedLibs {
		c.progs = map[[32]byte]*goja.Program{}
	}
	c.progs[key] = p
	return p, nil
}

// loadLocalLibrary(name) loads a tenant's shared library through the Host
// and returns its module.exports. The library runs in the script's
// sandbox and under its time limit.
func fnLoadLocalLibrary(r *run, c goja.FunctionCall) goja.Value {
	name := c.Argument(0).String()
	if r.host == nil {
		r.hostFail("loadLocalLibrary", errNoHost)
	}
	src, err := r.host.Library(r.ctx, r.in.TenantDomain, name)
	if err != nil {
		r.hostFail("loadLocalLibrary("+name+")", err)
	}
	if len(src) > MaxSourceBytes {
		throw(r, "loadLocalLibrary(%s): the library is larger than %d bytes", name, MaxSourceBytes)
	}
	if _, err := parser.ParseFile(nil, "library:"+name, src, 0, parser.WithDisableSourceMaps); err != nil {
		throw(r, "loadLocalLibrary(%s): %v", name, err)
	}
	p, err := r.e.libs.compile(name, src)
	if err != nil {
		throw(r, "loadLocalLibrary(%s): %v", name, err)
	}
	rt := r.v.rt
	w, err := rt.RunProgram(p)
	if err != nil {
		panic(err)
	}
	f, ok := goja.AssertFunction(w)
	if !ok {
		throw(r, "loadLocalLibrary(%s): the library did not load", name)
	}
	module := rt.NewObject()
	exports := rt.NewObject()
	_ = module.Set("exports", exports)
	if _, err := f(goja.Undefined(), module, exports); err != nil {
		panic(err)
	}
	return module.Get("exports")
}
