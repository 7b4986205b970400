//! STS on the S3 endpoint (`POST /`, form-encoded, MinIO-compatible): temporary
//! credentials for a directory login (`AssumeRoleWithLDAPIdentity`, unsigned: the
//! password is the proof) and for a local user's own key (`AssumeRole`, signed).
//!
//! Credentials are an access key, a secret and a session token, kept (sealed, the
//! token only as a hash) in the key records; every request made with them must carry
//! the token and is refused once they expire.

use crate::ctx::{PeerAddr, SecureTransport};
use crate::identity::auth::{iso8601, query_pairs, token_sha256, Identities};
use crate::identity::keys::{now_unix, Owner, Session};
use crate::identity::ldap::{self, LdapError};
use crate::tls;
use crate::trail::{self, Api};
use crate::xml::escape;
use hyper::http::Extensions;
use hyper::{HeaderMap, Method, StatusCode, Uri};
use rand::distr::{Alphanumeric, SampleString};
use s3s::route::S3Route;
use s3s::{Body, S3Request, S3Response, S3Result};

const XMLNS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
/// STS forms are a few hundred bytes.
const MAX_FORM: usize = 64 * 1024;
const DEFAULT_DURATION: u64 = 3600;
const MAX_DURATION: u64 = 12 * 3600;

#[derive(Clone)]
pub(crate) struct Sts {
    pub identities: Identities,
    /// Directory logins, as the server's settings say now.
    pub live: crate::Live,
    /// The shortest `DurationSeconds` accepted (AWS: 900).
    pub min_duration: u64,
    /// Directory logins over plain HTTP from other machines are taken too.
    pub allow_insecure_login: bool,
}

/// An STS refusal: status, AWS error code, message.
struct Refusal(StatusCode, &'static str, String);

fn refuse<T>(status: StatusCode, code: &'static str, msg: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal(status, code, msg.into()))
}

/// Granted temporary credentials.
struct Granted {
    access_key: String,
    secret_key: String,
    token: String,
    expires_unix: u64,
}

#[async_trait::async_trait]
impl S3Route for Sts {
    fn is_match(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        _: &mut Extensions,
    ) -> bool {
        let form = headers
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        method == Method::POST && uri.path() == "/" && form
    }

    /// Each action checks its own caller (a directory login is unsigned by design).
    async fn check_access(&self, _req: &mut S3Request<Body>) -> S3Result<()> {
        Ok(())
    }

    async fn call(&self, mut req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        let form = match req.input.store_all_limited(MAX_FORM).await {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(_) => {
                return Ok(error_response(Refusal(
                    StatusCode::BAD_REQUEST,
                    "InvalidParameterValue",
                    "the STS form is too large or was cut short".into(),
                )))
            }
        };
        let mut params = form_pairs(&form);
        params.extend(query_pairs(&req.uri));
        let peer = req.extensions.get::<PeerAddr>().map(|p| p.0.ip());
        let source = peer.map_or_else(|| "?".to_string(), |ip| ip.to_string());
        // Only the server's accept loop sets these; without them the login is refused.
        let clear_login_ok = peer.is_some_and(|ip| {
            let secure = req.extensions.get::<SecureTransport>().is_some_and(|s| s.0);
            tls::login_allowed(secure, ip, self.allow_insecure_login)
        });
        let action = param(&params, "Action").unwrap_or_default().to_string();
        trail::update(|r| {
            r.api = Api::Sts;
            r.action = Some(
                match action.as_str() {
                    "AssumeRole" => "sts:AssumeRole",
                    "AssumeRoleWithLDAPIdentity" => "sts:AssumeRoleWithLDAPIdentity",
                    _ => "sts:unsupported",
                }
                .into(),
            );
            r.access_key = req.credentials.as_ref().map(|c| c.access_key.clone());
        });
        // A session policy narrows what the caller asked for; ignoring it would grant more.
        let narrowed = ["Policy", "PolicyArns.member.1.arn"]
            .iter()
            .any(|p| param(&params, p).is_some());
        let result = match action.as_str() {
            _ if narrowed => refuse(
                StatusCode::BAD_REQUEST,
                "InvalidParameterValue",
                "session policies (Policy, PolicyArns) are not supported; the session gets the user's own policies",
            ),
            "AssumeRoleWithLDAPIdentity" if !clear_login_ok => {
                tracing::info!(target: "cybs3::auth", action = "sts:AssumeRoleWithLDAPIdentity", source, decision = "deny", why = "plain HTTP from another machine");
                refuse(
                StatusCode::FORBIDDEN,
                "AccessDenied",
                "directory logins are refused over plain HTTP from other machines: the password would cross the network in clear. \
                 Serve HTTPS (`cybs3 server cert` once, then restart the server; or --tls-cert/--tls-key) and log in at the https:// endpoint, \
                 or start the server with --allow-insecure-login",
            )
            }
            "AssumeRoleWithLDAPIdentity" => self.ldap_login(&params, &source).await,
            "AssumeRole" => self.assume_role(&req, &params, &source).await,
            "" => refuse(
                StatusCode::BAD_REQUEST,
                "MissingAction",
                "the form names no Action",
            ),
            other => refuse(
                StatusCode::BAD_REQUEST,
                "InvalidAction",
                format!("unsupported STS action {other}; cybs3 serves AssumeRoleWithLDAPIdentity and AssumeRole"),
            ),
        };
        Ok(match result {
            Ok(granted) => success_response(&action, &granted),
            Err(refusal) => error_response(refusal),
        })
    }
}

impl Sts {
    async fn ldap_login(
        &self,
        params: &[(String, String)],
        source: &str,
    ) -> Result<Granted, Refusal> {
        let Some(cfg) = self.live.ldap() else {
            return refuse(
                StatusCode::BAD_REQUEST,
                "InvalidParameterValue",
                "LDAP login is not configured on this server (start it with --ldap-url)",
            );
        };
        let duration = self.duration(params)?;
        let user = param(params, "LDAPUsername").unwrap_or_default();
        let password = param(params, "LDAPPassword").unwrap_or_default();
        let logged = |decision: &str, why: &str| {
            tracing::info!(target: "cybs3::auth", caller = %format!("ldap:{user}"), action = "sts:AssumeRoleWithLDAPIdentity", source, decision, why);
            trail::update(|r| {
                r.user = Some(format!("ldap:{user}").into());
                r.decided(decision == "allow", format!("directory: {why}"));
            });
        };
        let id = match ldap::authenticate(&cfg, user, password).await {
            Ok(id) => id,
            Err(e) => {
                logged("deny", &e.to_string());
                return Err(match e {
                    LdapError::InvalidCredentials => Refusal(
                        StatusCode::FORBIDDEN,
                        "AccessDenied",
                        "invalid username or password".into(),
                    ),
                    LdapError::EmptyPassword | LdapError::InvalidUsername => Refusal(
                        StatusCode::BAD_REQUEST,
                        "InvalidParameterValue",
                        e.to_string(),
                    ),
                    LdapError::Unavailable(_) => Refusal(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "ServiceUnavailable",
                        e.to_string(),
                    ),
                    LdapError::Config(_) => Refusal(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "InternalError",
                        e.to_string(),
                    ),
                });
            }
        };
        let policies = ldap::policies_for(&cfg, &id);
        if policies.is_empty() {
            logged("deny", "no group maps to a policy");
            return refuse(
                StatusCode::FORBIDDEN,
                "AccessDenied",
                format!(
                    "{user} is in no directory group that maps to a policy (--ldap-group-policy)"
                ),
            );
        }
        logged("allow", &policies.join(","));
        self.grant(Session {
            principal: format!("ldap:{}", id.username),
            dn: Some(id.dn),
            policies,
            expires_unix: now_unix() + duration,
            token_sha256: String::new(),
        })
    }

    async fn assume_role(
        &self,
        req: &S3Request<Body>,
        params: &[(String, String)],
        source: &str,
    ) -> Result<Granted, Refusal> {
        let Some(c) = &req.credentials else {
            return refuse(
                StatusCode::FORBIDDEN,
                "AccessDenied",
                "AssumeRole must be signed with a user's access key",
            );
        };
        let duration = self.duration(params)?;
        // The key s3s verified the signature with, looked up once for both.
        let user = match self.identities.lookup_key(&c.access_key).await {
            Ok(Some((_, Owner::User(u)))) => u,
            _ => {
                return refuse(
                    StatusCode::FORBIDDEN,
                    "AccessDenied",
                    "AssumeRole needs a user's own access key (`cybs3 admin user add`)",
                )
            }
        };
        tracing::info!(target: "cybs3::auth", caller = %user, action = "sts:AssumeRole", source, decision = "allow");
        trail::update(|r| {
            r.user = Some(user.as_str().into());
            r.decided(true, "the user's own key");
        });
        self.grant(Session {
            principal: user,
            dn: None,
            policies: Vec::new(),
            expires_unix: now_unix() + duration,
            token_sha256: String::new(),
        })
    }

    fn duration(&self, params: &[(String, String)]) -> Result<u64, Refusal> {
        let Some(d) = param(params, "DurationSeconds") else {
            return Ok(DEFAULT_DURATION.max(self.min_duration));
        };
        match d.parse::<u64>() {
            Ok(d) if (self.min_duration..=MAX_DURATION).contains(&d) => Ok(d),
            _ => refuse(
                StatusCode::BAD_REQUEST,
                "ValidationError",
                format!(
                    "DurationSeconds must be a number from {} to {MAX_DURATION}",
                    self.min_duration
                ),
            ),
        }
    }

    fn grant(&self, mut session: Session) -> Result<Granted, Refusal> {
        let token = Alphanumeric.sample_string(&mut rand::rng(), 96);
        session.token_sha256 = token_sha256(&token);
        let expires_unix = session.expires_unix;
        let keyring = self.identities.iam.keyring();
        let stored = keyring
            .sweep_sessions()
            .and_then(|()| keyring.insert(Owner::Session(session)));
        match stored {
            Ok((access_key, secret_key)) => Ok(Granted {
                access_key,
                secret_key,
                token,
                expires_unix,
            }),
            Err(e) => {
                tracing::error!("cannot store session credentials: {e}");
                refuse(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "cannot store the session; try again",
                )
            }
        }
    }
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn form_pairs(form: &str) -> Vec<(String, String)> {
    match format!("/?{}", form.trim()).parse::<Uri>() {
        Ok(uri) => query_pairs(&uri),
        Err(_) => Vec::new(),
    }
}

fn success_response(action: &str, g: &Granted) -> S3Response<Body> {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <{action}Response xmlns=\"{XMLNS}\"><{action}Result><Credentials>\
         <AccessKeyId>{}</AccessKeyId><SecretAccessKey>{}</SecretAccessKey>\
         <SessionToken>{}</SessionToken><Expiration>{}</Expiration>\
         </Credentials></{action}Result><ResponseMetadata><RequestId>{}</RequestId>\
         </ResponseMetadata></{action}Response>",
        g.access_key,
        g.secret_key,
        g.token,
        iso8601(g.expires_unix),
        trail::request_id()
    );
    xml_response(StatusCode::OK, xml)
}

fn error_response(Refusal(status, code, message): Refusal) -> S3Response<Body> {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <ErrorResponse xmlns=\"{XMLNS}\"><Error><Type>{}</Type><Code>{code}</Code>\
         <Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
        if status.is_server_error() {
            "Receiver"
        } else {
            "Sender"
        },
        escape(&message),
        trail::request_id()
    );
    xml_response(status, xml)
}

fn xml_response(status: StatusCode, xml: String) -> S3Response<Body> {
    let mut r = S3Response::with_status(Body::from(xml), status);
    r.headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/xml"),
    );
    r
}
