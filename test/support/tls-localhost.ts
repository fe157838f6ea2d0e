/**
 * A self-signed certificate for localhost and 127.0.0.1 (P-256, valid until 2126), for tests of
 * TLS connections to a local server. Made with:
 *   openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=localhost \
 *     -addext 'subjectAltName=DNS:localhost,IP:127.0.0.1' -days 36500
 * A test key: it guards nothing.
 */
export const LOCALHOST_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgTUgtmCW+JqEoqv0Z
aFS8OAvoMwSzkyXUUY38AQRnR6qhRANCAASv39kYJtmBWvY9ZtVFO5ZivSAx4q1g
kUi6PNshO/JzqizODzJ7acgs+Sme4cOhwtHo1Cyk6j3hDFCUy7+M5I0K
-----END PRIVATE KEY-----
`;

export const LOCALHOST_CERT = `-----BEGIN CERTIFICATE-----
MIIBmzCCAUGgAwIBAgIUcAv6J5eHCh2YlIckFT3j73h0CNwwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTIwMTEwMjQ0MloYDzIxMjYxMTA3
MTAyNDQyWjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAASv39kYJtmBWvY9ZtVFO5ZivSAx4q1gkUi6PNshO/JzqizODzJ7acgs
+Sme4cOhwtHo1Cyk6j3hDFCUy7+M5I0Ko28wbTAdBgNVHQ4EFgQUd2T941QC1bd8
Dlof596h7//ymVgwHwYDVR0jBBgwFoAUd2T941QC1bd8Dlof596h7//ymVgwDwYD
VR0TAQH/BAUwAwEB/zAaBgNVHREEEzARgglsb2NhbGhvc3SHBH8AAAEwCgYIKoZI
zj0EAwIDSAAwRQIhANEHrJn5JjsdfOFaTkq66tzMqeLVjQG+97626E+sZAcdAiB8
JroPSE8DBJaOjbd7OrakSI9BdEjWpkTnEugHTMaPEw==
-----END CERTIFICATE-----
`;
