// Risk-based second factor
// Ask a risk service to score the login after step 1 and require step 2
// when the score reaches the threshold. The service must be in the
// engine's HTTP allow-list; if it cannot be reached the login fails
// closed. Replace riskServiceUrl with your service (or the risk plugin's
// endpoint).

var riskServiceUrl = 'https://risk.example.com/v1/score';
var threshold = 50;

/** @type {LatchLoginHandler} */
var onLoginRequest = function (context) {
    executeStep(1, {
        onSuccess: function (context) {
            var user = context.currentKnownSubject;
            httpPost(riskServiceUrl, {
                'user': user.uniqueId,
                'ip': context.request.ip,
                'userAgent': context.request.headers['user-agent'] || '',
                'application': context.serviceProviderName
            }, {
                onSuccess: function (context, data) {
                    Log.debug('risk score ' + data.score);
                    if (data.score >= threshold) {
                        executeStep(2);
                    }
                },
                onFail: function (context, data) {
                    Log.error('risk service failed: ' + data.status + ' ' + data.error);
                    fail({'errorCode': 'temporarily_unavailable', 'errorMessage': 'risk check unavailable'});
                }
            });
        }
    });
};
