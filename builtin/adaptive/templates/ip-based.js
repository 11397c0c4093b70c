// IP-based second factor
// Users connecting from outside the trusted networks must pass step 2.
// Networks are IPv4 CIDR blocks; edit trustedNetworks to suit.

var trustedNetworks = ['10.0.0.0/8', '192.168.0.0/16'];

function ipToNumber(ip) {
    var parts = ip.split('.');
    if (parts.length !== 4) {
        return -1;
    }
    var n = 0;
    for (var i = 0; i < 4; i++) {
        var p = parseInt(parts[i], 10);
        if (isNaN(p) || p < 0 || p > 255) {
            return -1;
        }
        n = n * 256 + p;
    }
    return n;
}

function inNetwork(ip, cidr) {
    var slash = cidr.indexOf('/');
    var base = ipToNumber(cidr.substring(0, slash));
    var bits = parseInt(cidr.substring(slash + 1), 10);
    var addr = ipToNumber(ip);
    if (addr < 0 || base < 0) {
        return false;
    }
    var size = Math.pow(2, 32 - bits);
    return Math.floor(addr / size) === Math.floor(base / size);
}

function isTrusted(ip) {
    for (var i = 0; i < trustedNetworks.length; i++) {
        if (inNetwork(ip, trustedNetworks[i])) {
            return true;
        }
    }
    return false;
}

/** @type {LatchLoginHandler} */
var onLoginRequest = function (context) {
    executeStep(1, {
        onSuccess: function (context) {
            var ip = context.request.ip;
            if (!isTrusted(ip)) {
                Log.info('login from untrusted address ' + getMaskedValue(ip) + '; second factor required');
                executeStep(2);
            }
        }
    });
};
