//! Tests of parsing, validation and evaluation of policy documents (one long file:
//! cases only, grouped by rule; the code under test is split by role beside it).

use super::actions::UNKNOWN_ACTION;
use super::conditions::arn_match;
use super::dates::parse_date;
use super::document::{iam_user_name, validate_action};
use super::patterns::{wildcard_match, Template, Tok};
use super::*;

fn policy(json: &str) -> Policy {
    Policy::parse(json).unwrap_or_else(|e| panic!("{e}: {json}"))
}

/// A 2012-10-17 policy with the given statements (JSON array body).
fn statements(body: &str) -> Policy {
    policy(&format!(
        r#"{{"Version":"2012-10-17","Statement":[{body}]}}"#
    ))
}

fn parse_err(json: &str) -> String {
    Policy::parse(json).expect_err(json).to_string()
}

fn eval_as(p: &Policy, who: Principal, action: &str, resource: &str, ctx: &Context) -> Decision {
    p.evaluate(&Request {
        action,
        resource,
        principal: who,
        context: ctx,
    })
}

fn eval(p: &Policy, action: &str, resource: &str, ctx: &Context) -> Decision {
    eval_as(p, Principal::User("alice"), action, resource, ctx)
}

fn eval_plain(p: &Policy, action: &str, resource: &str) -> Decision {
    eval(p, action, resource, &Context::default())
}

fn ctx(pairs: &[(&str, &str)]) -> Context {
    let mut c = Context::default();
    for (k, v) in pairs {
        c.add(k, *v);
    }
    c
}

/// Policy allowing s3:GetObject on everything when `condition` holds.
fn conditional(condition: &str) -> Policy {
    statements(&format!(
        r#"{{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{condition}}}"#
    ))
}

fn check(p: &Policy, c: &Context) -> Decision {
    eval(p, "s3:GetObject", "arn:aws:s3:::b/k", c)
}

const OBJ: &str = "arn:aws:s3:::b/k";
use Decision::{Allow, Deny, Neither};

#[test]
fn explicit_deny_beats_allow_in_one_policy() {
    let p = statements(
        r#"{"Effect":"Allow","Action":"s3:*","Resource":"*"},
           {"Effect":"Deny","Action":"s3:DeleteObject","Resource":"arn:aws:s3:::b/*"}"#,
    );
    assert_eq!(eval_plain(&p, "s3:GetObject", OBJ), Allow);
    assert_eq!(eval_plain(&p, "s3:DeleteObject", OBJ), Deny);
    assert_eq!(eval_plain(&p, "s3:DeleteObject", "arn:aws:s3:::c/k"), Allow);
}

#[test]
fn explicit_deny_beats_allow_across_policies() {
    let allow = canned("readwrite").unwrap();
    let deny = statements(r#"{"Effect":"Deny","Action":"s3:PutObject","Resource":"*"}"#);
    let c = Context::default();
    let req = |action| Request {
        action,
        resource: OBJ,
        principal: Principal::User("alice"),
        context: &c,
    };
    assert_eq!(evaluate_all([&allow, &deny], &req("s3:PutObject")), Deny);
    assert_eq!(evaluate_all([&deny, &allow], &req("s3:PutObject")), Deny);
    assert_eq!(evaluate_all([&allow, &deny], &req("s3:GetObject")), Allow);
    assert_eq!(evaluate_all([&deny], &req("s3:GetObject")), Neither);
    assert_eq!(evaluate_all([], &req("s3:GetObject")), Neither);
}

#[test]
fn action_wildcards_are_case_insensitive() {
    let p = statements(
        r#"{"Effect":"Allow","Action":["S3:get*","s3:?utObjectTagging"],"Resource":"*"}"#,
    );
    assert_eq!(eval_plain(&p, "s3:GetObject", OBJ), Allow);
    assert_eq!(eval_plain(&p, "s3:getbucketpolicy", OBJ), Allow);
    assert_eq!(eval_plain(&p, "s3:PutObjectTagging", OBJ), Allow);
    assert_eq!(eval_plain(&p, "s3:PutObject", OBJ), Neither);
    assert_eq!(eval_plain(&p, "admin:GetUser", OBJ), Neither);
    let all = statements(r#"{"Effect":"Allow","Action":"*","Resource":"*"}"#);
    assert_eq!(eval_plain(&all, "admin:CreateUser", "*"), Allow);
}

#[test]
fn resource_wildcards_are_case_sensitive_and_span_slashes() {
    let p = statements(
        r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":["arn:aws:s3:::b/home/alice/*","arn:aws:s3:::logs-??/*"]}"#,
    );
    let get = |r| eval_plain(&p, "s3:GetObject", r);
    assert_eq!(get("arn:aws:s3:::b/home/alice/x"), Allow);
    assert_eq!(get("arn:aws:s3:::b/home/alice/deep/er/x"), Allow);
    assert_eq!(get("arn:aws:s3:::b/home/alice"), Neither);
    assert_eq!(get("arn:aws:s3:::b/home/bob/x"), Neither);
    assert_eq!(get("arn:aws:s3:::B/home/alice/x"), Neither);
    assert_eq!(get("arn:aws:s3:::b/home/Alice/x"), Neither);
    assert_eq!(get("arn:aws:s3:::logs-01/a/b"), Allow);
    assert_eq!(get("arn:aws:s3:::logs-1/a"), Neither);
}

#[test]
fn request_without_resource_needs_all_buckets() {
    let all = statements(
        r#"{"Effect":"Allow","Action":"s3:ListAllMyBuckets","Resource":"arn:aws:s3:::*"}"#,
    );
    let one = statements(
        r#"{"Effect":"Allow","Action":"s3:ListAllMyBuckets","Resource":"arn:aws:s3:::b*"}"#,
    );
    assert_eq!(eval_plain(&all, "s3:ListAllMyBuckets", "*"), Allow);
    assert_eq!(eval_plain(&one, "s3:ListAllMyBuckets", "*"), Neither);
}

#[test]
fn not_action_and_not_resource() {
    let p = statements(
        r#"{"Effect":"Allow","NotAction":"s3:Delete*","Resource":"*"},
           {"Effect":"Deny","Action":"s3:*","NotResource":["arn:aws:s3:::public","arn:aws:s3:::public/*"]}"#,
    );
    assert_eq!(
        eval_plain(&p, "s3:GetObject", "arn:aws:s3:::public/x"),
        Allow
    );
    assert_eq!(
        eval_plain(&p, "s3:DeleteObject", "arn:aws:s3:::public/x"),
        Neither
    );
    assert_eq!(
        eval_plain(&p, "s3:GetObject", "arn:aws:s3:::private/x"),
        Deny
    );
}

#[test]
fn prefix_scoped_list_bucket() {
    let p = statements(
        r#"{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::b",
            "Condition":{"StringLike":{"s3:prefix":["alice/*","alice/"]}}}"#,
    );
    let list = |prefix| {
        eval(
            &p,
            "s3:ListBucket",
            "arn:aws:s3:::b",
            &ctx(&[("s3:prefix", prefix)]),
        )
    };
    assert_eq!(list("alice/"), Allow);
    assert_eq!(list("alice/x"), Allow);
    assert_eq!(list(""), Neither);
    assert_eq!(list("bob/"), Neither);
    assert_eq!(eval_plain(&p, "s3:ListBucket", "arn:aws:s3:::b"), Neither);
}

#[test]
fn username_variable_substitution() {
    let home =
        r#"{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/home/${aws:username}/*"}"#;
    let p = statements(home);
    let alice = ctx(&[("aws:username", "alice")]);
    assert_eq!(
        eval(&p, "s3:PutObject", "arn:aws:s3:::b/home/alice/f", &alice),
        Allow
    );
    assert_eq!(
        eval(&p, "s3:PutObject", "arn:aws:s3:::b/home/bob/f", &alice),
        Neither
    );
    // A missing variable makes the element not match.
    assert_eq!(
        eval_plain(&p, "s3:PutObject", "arn:aws:s3:::b/home/alice/f"),
        Neither
    );
    // Substituted values are literal: a "*" user name does not become a wildcard.
    let star = ctx(&[("aws:username", "*")]);
    assert_eq!(
        eval(&p, "s3:PutObject", "arn:aws:s3:::b/home/bob/f", &star),
        Neither
    );
    // Version 2008-10-17 (or none) has no variables.
    let old = policy(&format!(r#"{{"Version":"2008-10-17","Statement":{home}}}"#));
    assert_eq!(
        eval(&old, "s3:PutObject", "arn:aws:s3:::b/home/alice/f", &alice),
        Neither
    );
    assert_eq!(
        eval(
            &old,
            "s3:PutObject",
            "arn:aws:s3:::b/home/${aws:username}/f",
            &alice
        ),
        Allow
    );
}

#[test]
fn variable_escapes_and_condition_variables() {
    let p = statements(
        r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/${*}${?}${$}"}"#,
    );
    assert_eq!(eval_plain(&p, "s3:GetObject", "arn:aws:s3:::b/*?$"), Allow);
    assert_eq!(
        eval_plain(&p, "s3:GetObject", "arn:aws:s3:::b/xy$"),
        Neither
    );
    let c = conditional(r#"{"StringLike":{"s3:prefix":"${aws:username}/*"}}"#);
    let ok = ctx(&[("aws:username", "alice"), ("s3:prefix", "alice/x")]);
    let other = ctx(&[("aws:username", "alice"), ("s3:prefix", "bob/x")]);
    assert_eq!(check(&c, &ok), Allow);
    assert_eq!(check(&c, &other), Neither);
    assert_eq!(check(&c, &ctx(&[("s3:prefix", "alice/x")])), Neither);
}

#[test]
fn ip_address_conditions() {
    let host = conditional(r#"{"IpAddress":{"aws:SourceIp":"127.0.0.1/32"}}"#);
    let ip = |addr| ctx(&[("aws:SourceIp", addr)]);
    assert_eq!(check(&host, &ip("127.0.0.1")), Allow);
    assert_eq!(check(&host, &ip("127.0.0.2")), Neither);
    assert_eq!(check(&host, &ip("::ffff:127.0.0.1")), Allow);
    assert_eq!(check(&host, &ip("not-an-ip")), Neither);
    let net = conditional(r#"{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","2001:db8::/32"]}}"#);
    assert_eq!(check(&net, &ip("10.200.3.4")), Allow);
    assert_eq!(check(&net, &ip("11.0.0.1")), Neither);
    assert_eq!(check(&net, &ip("2001:db8:1::5")), Allow);
    assert_eq!(check(&net, &ip("2001:db9::5")), Neither);
    let v6 = conditional(r#"{"IpAddress":{"aws:SourceIp":"::1"}}"#);
    assert_eq!(check(&v6, &ip("::1")), Allow);
    assert_eq!(check(&v6, &ip("127.0.0.1")), Neither);
    let not = conditional(r#"{"NotIpAddress":{"aws:SourceIp":"127.0.0.1"}}"#);
    assert_eq!(check(&not, &ip("127.0.0.1")), Neither);
    assert_eq!(check(&not, &ip("127.0.0.2")), Allow);
    let any = conditional(r#"{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}"#);
    assert_eq!(check(&any, &ip("192.0.2.1")), Allow);
}

#[test]
fn bool_secure_transport() {
    let p = statements(
        r#"{"Effect":"Allow","Action":"s3:*","Resource":"*"},
           {"Effect":"Deny","Action":"s3:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":false}}}"#,
    );
    assert_eq!(check(&p, &ctx(&[("aws:SecureTransport", "true")])), Allow);
    assert_eq!(check(&p, &ctx(&[("aws:SecureTransport", "false")])), Deny);
    // Missing key: the positive Bool operator does not hold.
    assert_eq!(check(&p, &Context::default()), Allow);
}

#[test]
fn if_exists_and_null() {
    let p = conditional(r#"{"StringEqualsIfExists":{"s3:x-amz-acl":"private"}}"#);
    assert_eq!(check(&p, &Context::default()), Allow);
    assert_eq!(check(&p, &ctx(&[("s3:x-amz-acl", "private")])), Allow);
    assert_eq!(check(&p, &ctx(&[("s3:x-amz-acl", "public-read")])), Neither);
    let absent = conditional(r#"{"Null":{"s3:x-amz-acl":"true"}}"#);
    assert_eq!(check(&absent, &Context::default()), Allow);
    assert_eq!(
        check(&absent, &ctx(&[("s3:x-amz-acl", "private")])),
        Neither
    );
    let present = conditional(r#"{"Null":{"s3:x-amz-acl":false}}"#);
    assert_eq!(check(&present, &Context::default()), Neither);
    assert_eq!(check(&present, &ctx(&[("s3:x-amz-acl", "private")])), Allow);
}

#[test]
fn negated_operators_on_missing_keys_and_multiple_values() {
    let p =
        conditional(r#"{"StringNotEquals":{"s3:x-amz-acl":["public-read","public-read-write"]}}"#);
    assert_eq!(check(&p, &Context::default()), Allow);
    assert_eq!(check(&p, &ctx(&[("s3:x-amz-acl", "private")])), Allow);
    assert_eq!(check(&p, &ctx(&[("s3:x-amz-acl", "public-read")])), Neither);
    assert_eq!(
        check(&p, &ctx(&[("s3:x-amz-acl", "public-read-write")])),
        Neither
    );
    let positive = conditional(r#"{"StringEquals":{"s3:x-amz-acl":["a","b"]}}"#);
    assert_eq!(check(&positive, &ctx(&[("s3:x-amz-acl", "b")])), Allow);
    assert_eq!(check(&positive, &Context::default()), Neither);
}

#[test]
fn multiple_operators_and_keys_are_anded() {
    let p = conditional(
        r#"{"StringEquals":{"aws:username":"alice","s3:delimiter":"/"},
            "NumericLessThanEquals":{"s3:max-keys":100}}"#,
    );
    let all = ctx(&[
        ("aws:username", "alice"),
        ("s3:delimiter", "/"),
        ("s3:max-keys", "10"),
    ]);
    assert_eq!(check(&p, &all), Allow);
    let too_many = ctx(&[
        ("aws:username", "alice"),
        ("s3:delimiter", "/"),
        ("s3:max-keys", "1000"),
    ]);
    assert_eq!(check(&p, &too_many), Neither);
    let no_delim = ctx(&[("aws:username", "alice"), ("s3:max-keys", "10")]);
    assert_eq!(check(&p, &no_delim), Neither);
}

#[test]
fn set_qualifiers() {
    let any = conditional(r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["env","team"]}}"#);
    let all = conditional(r#"{"ForAllValues:StringLike":{"aws:TagKeys":["env","team*"]}}"#);
    let tags = |values: &[&str]| {
        let mut c = Context::default();
        for v in values {
            c.add("aws:TagKeys", *v);
        }
        c
    };
    assert_eq!(check(&any, &tags(&["other", "team"])), Allow);
    assert_eq!(check(&any, &tags(&["other"])), Neither);
    assert_eq!(check(&any, &tags(&[])), Neither);
    assert_eq!(check(&all, &tags(&["env", "team-a"])), Allow);
    assert_eq!(check(&all, &tags(&["env", "other"])), Neither);
    // ForAllValues is vacuously true when the key is missing.
    assert_eq!(check(&all, &tags(&[])), Allow);
    let none = conditional(r#"{"ForAllValues:StringNotEquals":{"aws:TagKeys":"secret"}}"#);
    assert_eq!(check(&none, &tags(&["a", "b"])), Allow);
    assert_eq!(check(&none, &tags(&["a", "secret"])), Neither);
}

#[test]
fn string_case_numeric_date_and_arn_operators() {
    let ic = conditional(r#"{"StringEqualsIgnoreCase":{"s3:x-amz-acl":"PRIVATE"}}"#);
    assert_eq!(check(&ic, &ctx(&[("s3:x-amz-acl", "private")])), Allow);
    let exact = conditional(r#"{"StringEquals":{"s3:x-amz-acl":"PRIVATE"}}"#);
    assert_eq!(check(&exact, &ctx(&[("s3:x-amz-acl", "private")])), Neither);
    let num = conditional(
        r#"{"NumericGreaterThan":{"s3:max-keys":"2.5"},"NumericNotEquals":{"s3:max-keys":7}}"#,
    );
    assert_eq!(check(&num, &ctx(&[("s3:max-keys", "3")])), Allow);
    assert_eq!(check(&num, &ctx(&[("s3:max-keys", "7")])), Neither);
    assert_eq!(check(&num, &ctx(&[("s3:max-keys", "2")])), Neither);
    assert_eq!(check(&num, &ctx(&[("s3:max-keys", "lots")])), Neither);
    let before = conditional(r#"{"DateLessThan":{"aws:CurrentTime":"2026-01-01T00:00:00Z"}}"#);
    let at = |t| ctx(&[("aws:CurrentTime", t)]);
    assert_eq!(check(&before, &at("2025-12-31T23:59:59Z")), Allow);
    assert_eq!(check(&before, &at("2026-01-01T00:00:00Z")), Neither);
    assert_eq!(check(&before, &at("2026-01-01T00:30:00+01:00")), Allow);
    assert_eq!(check(&before, &at("1767225599")), Allow);
    let arn = conditional(r#"{"ArnLike":{"aws:SourceArn":"arn:aws:s3:::logs-*"}}"#);
    assert_eq!(
        check(&arn, &ctx(&[("aws:SourceArn", "arn:aws:s3:::logs-1")])),
        Allow
    );
    assert_eq!(
        check(&arn, &ctx(&[("aws:SourceArn", "arn:aws:s3:::data")])),
        Neither
    );
    let not_arn = conditional(r#"{"ArnNotEquals":{"aws:SourceArn":"arn:aws:iam::*:user/bob"}}"#);
    assert_eq!(
        check(
            &not_arn,
            &ctx(&[("aws:SourceArn", "arn:aws:iam::1:user/bob")])
        ),
        Neither
    );
    assert_eq!(
        check(
            &not_arn,
            &ctx(&[("aws:SourceArn", "arn:aws:iam::1:user/eve")])
        ),
        Allow
    );
}

#[test]
fn arn_wildcards_do_not_cross_components() {
    let pattern: Vec<Tok> = Template::compile("arn:aws:s3:*:1:b", false)
        .resolve(&Context::default())
        .unwrap();
    assert!(arn_match(&pattern, "arn:aws:s3:us-east-1:1:b"));
    assert!(!arn_match(&pattern, "arn:aws:s3:x:y:1:b"));
}

#[test]
fn dates_parse() {
    assert_eq!(parse_date("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(parse_date("1970-01-02"), Some(86_400_000));
    assert_eq!(parse_date("86400"), Some(86_400_000));
    assert_eq!(parse_date("2000-03-01T00:00:00Z"), Some(951_868_800_000));
    assert_eq!(
        parse_date("2024-02-29T12:00:00.250Z"),
        Some(1_709_208_000_250)
    );
    assert_eq!(
        parse_date("2026-01-01T01:00:00+01:00"),
        parse_date("2026-01-01T00:00:00Z")
    );
    assert_eq!(parse_date("2026-01-01T00:00-0130"), Some(1_767_231_000_000));
    assert_eq!(parse_date("1969-12-31T23:59:59Z"), Some(-1000));
    for bad in [
        "2023-02-29",
        "2026-13-01",
        "2026-01-01T24:00:00Z",
        "2026-01-01X",
        "yesterday",
        "2026-01-01T00:00:00Zjunk",
    ] {
        assert_eq!(parse_date(bad), None, "{bad}");
    }
}

#[test]
fn principals() {
    let p = statements(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/*"},
           {"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::123456789012:user/alice","bob"]},"Action":"s3:PutObject","Resource":"*"},
           {"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::1:user/carol"},"Action":"s3:DeleteBucket","Resource":"*"}"#,
    );
    let c = Context::default();
    let pub_obj = "arn:aws:s3:::pub/x";
    assert_eq!(
        eval_as(&p, Principal::Anonymous, "s3:GetObject", pub_obj, &c),
        Allow
    );
    assert_eq!(
        eval_as(&p, Principal::Root, "s3:GetObject", pub_obj, &c),
        Allow
    );
    assert_eq!(
        eval_as(&p, Principal::User("alice"), "s3:PutObject", OBJ, &c),
        Allow
    );
    assert_eq!(
        eval_as(&p, Principal::User("bob"), "s3:PutObject", OBJ, &c),
        Allow
    );
    assert_eq!(
        eval_as(&p, Principal::User("eve"), "s3:PutObject", OBJ, &c),
        Neither
    );
    assert_eq!(
        eval_as(&p, Principal::Anonymous, "s3:PutObject", OBJ, &c),
        Neither
    );
    assert_eq!(
        eval_as(&p, Principal::Root, "s3:PutObject", OBJ, &c),
        Neither
    );
    assert_eq!(
        eval_as(&p, Principal::User("carol"), "s3:DeleteBucket", OBJ, &c),
        Neither
    );
    assert_eq!(
        eval_as(&p, Principal::User("alice"), "s3:DeleteBucket", OBJ, &c),
        Deny
    );
    let aws_star = statements(
        r#"{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"s3:GetObject","Resource":"*"}"#,
    );
    assert_eq!(
        eval_as(&aws_star, Principal::Anonymous, "s3:GetObject", OBJ, &c),
        Allow
    );
    // Identity policies (no Principal) apply to whoever they are attached to.
    let identity = statements(r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}"#);
    assert_eq!(
        eval_as(&identity, Principal::Anonymous, "s3:GetObject", OBJ, &c),
        Allow
    );
}

#[test]
fn iam_user_names() {
    assert_eq!(iam_user_name("arn:aws:iam::1:user/alice"), Some("alice"));
    assert_eq!(
        iam_user_name("arn:aws:iam::1:user/team/alice"),
        Some("alice")
    );
    assert_eq!(iam_user_name("arn:aws:iam::1:root"), None);
    assert_eq!(iam_user_name("arn:aws:s3:::b"), None);
}

#[test]
fn canned_policies() {
    for name in CANNED {
        assert!(canned(name).is_some(), "{name}");
    }
    assert!(canned("superuser").is_none());
    let ro = canned("readonly").unwrap();
    assert_eq!(eval_plain(&ro, "s3:GetObject", OBJ), Allow);
    assert_eq!(eval_plain(&ro, "s3:ListBucket", "arn:aws:s3:::b"), Allow);
    assert_eq!(eval_plain(&ro, "s3:ListAllMyBuckets", "*"), Allow);
    assert_eq!(eval_plain(&ro, "s3:PutObject", OBJ), Neither);
    assert_eq!(eval_plain(&ro, "s3:DeleteObject", OBJ), Neither);
    let wo = canned("writeonly").unwrap();
    assert_eq!(eval_plain(&wo, "s3:PutObject", OBJ), Allow);
    assert_eq!(eval_plain(&wo, "s3:GetObject", OBJ), Neither);
    assert_eq!(eval_plain(&wo, "s3:ListBucket", "arn:aws:s3:::b"), Neither);
    let rw = canned("readwrite").unwrap();
    assert_eq!(eval_plain(&rw, "s3:DeleteObject", OBJ), Allow);
    assert_eq!(
        eval_plain(&rw, "s3:PutBucketPolicy", "arn:aws:s3:::b"),
        Allow
    );
    assert_eq!(eval_plain(&rw, "admin:CreateUser", "*"), Neither);
    let admin = canned("admin").unwrap();
    assert_eq!(eval_plain(&admin, "admin:CreateUser", "*"), Allow);
    assert_eq!(
        eval_plain(&admin, "s3:DeleteBucket", "arn:aws:s3:::b"),
        Allow
    );
}

#[test]
fn document_text_and_shapes() {
    let text = r#"{ "Id": "x", "Statement": {"Sid":"one","Effect":"Allow","Action":"s3:GetObject","Resource":"*"} }"#;
    let p = policy(text);
    assert_eq!(p.to_json(), text);
    assert_eq!(eval_plain(&p, "s3:GetObject", OBJ), Allow);
}

#[test]
fn context_keys_are_case_insensitive() {
    let mut c = Context::default();
    c.set("AWS:SourceIp", "127.0.0.1");
    assert_eq!(c.get("aws:sourceip"), Some(&["127.0.0.1".to_owned()][..]));
    c.add("aws:SOURCEIP", "::1");
    assert_eq!(c.get("aws:SourceIp").map(<[String]>::len), Some(2));
    c.set("aws:sourceip", "10.0.0.1");
    assert_eq!(c.get("aws:SourceIp").map(<[String]>::len), Some(1));
    assert_eq!(c.get("s3:prefix"), None);
}

#[test]
fn malformed_documents_are_rejected() {
    let cases = [
        (r#"{"Statement":"#, "not valid JSON"),
        (r#"[]"#, "must be a JSON object"),
        (r#"{"Version":"2012-10-17"}"#, "missing Statement"),
        (r#"{"Statement":[]}"#, "Statement must not be empty"),
        (
            r#"{"Version":"2020-01-01","Statement":[]}"#,
            "unsupported Version",
        ),
        (r#"{"Statment":[]}"#, "unknown field \"Statment\""),
        (
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"},{"Effect":"Alow","Action":"s3:*","Resource":"*"}]}"#,
            "Statement 2: unknown Effect \"Alow\"",
        ),
        (
            r#"{"Statement":[{"Sid":"Read","Effect":"Allow","Resource":"*"}]}"#,
            "Statement 1 (Sid \"Read\"): missing Action",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","NotAction":"s3:Get*","Resource":"*"}]}"#,
            "Statement 1: both Action and NotAction",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:*"}]}"#,
            "missing Resource",
        ),
        (
            r#"{"Statement":[{"Action":"s3:*","Resource":"*"}]}"#,
            "missing Effect",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Action":7,"Resource":"*"}]}"#,
            "Action must be a string",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Action":[],"Resource":"*"}]}"#,
            "Action must not be empty",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Action":"GetObject","Resource":"*"}]}"#,
            "invalid action",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"bucket"}]}"#,
            "invalid resource",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Extra":1}]}"#,
            "unknown field \"Extra\"",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEqualz":{"k":"v"}}}]}"#,
            "unknown condition operator \"StringEqualz\"",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"NullIfExists":{"k":"true"}}}]}"#,
            "Null takes neither IfExists",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"300.0.0.1"}}}]}"#,
            "invalid value \"300.0.0.1\"",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"NumericLessThan":{"s3:max-keys":"ten"}}}]}"#,
            "invalid value",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEquals":{"k":null}}}]}"#,
            "values must be strings",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"x"},"Action":"s3:*","Resource":"*"}]}"#,
            "unsupported Principal type",
        ),
        (
            r#"{"Statement":[{"Effect":"Allow","Principal":"alice","Action":"s3:*","Resource":"*"}]}"#,
            "Principal must be",
        ),
    ];
    for (json, expected) in cases {
        let err = parse_err(json);
        assert!(
            err.contains(expected),
            "{json}: got {err:?}, want {expected:?}"
        );
        assert!(!err.contains('\n'), "{err:?}");
    }
}

#[test]
fn action_for_representative_ops() {
    let cases = [
        ("GetObject", false, "s3:GetObject"),
        ("GetObject", true, "s3:GetObjectVersion"),
        ("HeadObject", true, "s3:GetObjectVersion"),
        ("GetObjectAttributes", true, "s3:GetObjectVersionAttributes"),
        ("ListObjectsV2", false, "s3:ListBucket"),
        ("ListObjects", false, "s3:ListBucket"),
        ("HeadBucket", false, "s3:ListBucket"),
        ("ListObjectVersions", false, "s3:ListBucketVersions"),
        ("ListBuckets", false, "s3:ListAllMyBuckets"),
        ("CopyObject", false, "s3:PutObject"),
        ("UploadPartCopy", false, "s3:PutObject"),
        ("CompleteMultipartUpload", false, "s3:PutObject"),
        ("AbortMultipartUpload", false, "s3:AbortMultipartUpload"),
        ("ListParts", false, "s3:ListMultipartUploadParts"),
        (
            "ListMultipartUploads",
            false,
            "s3:ListBucketMultipartUploads",
        ),
        ("DeleteObject", true, "s3:DeleteObjectVersion"),
        ("DeleteObjects", false, "s3:DeleteObject"),
        ("PutObjectTagging", true, "s3:PutObjectVersionTagging"),
        ("DeleteObjectTagging", false, "s3:DeleteObjectTagging"),
        ("DeleteBucketTagging", false, "s3:PutBucketTagging"),
        ("DeleteBucketCors", false, "s3:PutBucketCORS"),
        (
            "GetBucketLifecycleConfiguration",
            false,
            "s3:GetLifecycleConfiguration",
        ),
        (
            "PutBucketEncryption",
            false,
            "s3:PutEncryptionConfiguration",
        ),
        (
            "GetObjectLockConfiguration",
            false,
            "s3:GetBucketObjectLockConfiguration",
        ),
        (
            "PutBucketNotificationConfiguration",
            false,
            "s3:PutBucketNotification",
        ),
        ("GetBucketPolicyStatus", false, "s3:GetBucketPolicyStatus"),
        ("PutBucketVersioning", false, "s3:PutBucketVersioning"),
        ("Frobnicate", false, UNKNOWN_ACTION),
    ];
    for (op, versioned, expected) in cases {
        assert_eq!(action_for(op, versioned), expected, "{op} {versioned}");
    }
}

/// Every operation s3s 0.14.1 defines (`S3Operation::name()`).
const S3S_OPERATIONS: &[&str] = &[
    "AbortMultipartUpload",
    "CompleteMultipartUpload",
    "CopyObject",
    "CreateBucket",
    "CreateBucketMetadataTableConfiguration",
    "CreateMultipartUpload",
    "CreateSession",
    "DeleteBucket",
    "DeleteBucketAnalyticsConfiguration",
    "DeleteBucketCors",
    "DeleteBucketEncryption",
    "DeleteBucketIntelligentTieringConfiguration",
    "DeleteBucketInventoryConfiguration",
    "DeleteBucketLifecycle",
    "DeleteBucketMetadataTableConfiguration",
    "DeleteBucketMetricsConfiguration",
    "DeleteBucketOwnershipControls",
    "DeleteBucketPolicy",
    "DeleteBucketReplication",
    "DeleteBucketTagging",
    "DeleteBucketWebsite",
    "DeleteObject",
    "DeleteObjectTagging",
    "DeleteObjects",
    "DeletePublicAccessBlock",
    "GetBucketAccelerateConfiguration",
    "GetBucketAcl",
    "GetBucketAnalyticsConfiguration",
    "GetBucketCors",
    "GetBucketEncryption",
    "GetBucketIntelligentTieringConfiguration",
    "GetBucketInventoryConfiguration",
    "GetBucketLifecycleConfiguration",
    "GetBucketLocation",
    "GetBucketLogging",
    "GetBucketMetadataTableConfiguration",
    "GetBucketMetricsConfiguration",
    "GetBucketNotificationConfiguration",
    "GetBucketOwnershipControls",
    "GetBucketPolicy",
    "GetBucketPolicyStatus",
    "GetBucketReplication",
    "GetBucketRequestPayment",
    "GetBucketTagging",
    "GetBucketVersioning",
    "GetBucketWebsite",
    "GetObject",
    "GetObjectAcl",
    "GetObjectAttributes",
    "GetObjectLegalHold",
    "GetObjectLockConfiguration",
    "GetObjectRetention",
    "GetObjectTagging",
    "GetObjectTorrent",
    "GetPublicAccessBlock",
    "HeadBucket",
    "HeadObject",
    "ListBucketAnalyticsConfigurations",
    "ListBucketIntelligentTieringConfigurations",
    "ListBucketInventoryConfigurations",
    "ListBucketMetricsConfigurations",
    "ListBuckets",
    "ListDirectoryBuckets",
    "ListMultipartUploads",
    "ListObjectVersions",
    "ListObjects",
    "ListObjectsV2",
    "ListParts",
    "PutBucketAccelerateConfiguration",
    "PutBucketAcl",
    "PutBucketAnalyticsConfiguration",
    "PutBucketCors",
    "PutBucketEncryption",
    "PutBucketIntelligentTieringConfiguration",
    "PutBucketInventoryConfiguration",
    "PutBucketLifecycleConfiguration",
    "PutBucketLogging",
    "PutBucketMetricsConfiguration",
    "PutBucketNotificationConfiguration",
    "PutBucketOwnershipControls",
    "PutBucketPolicy",
    "PutBucketReplication",
    "PutBucketRequestPayment",
    "PutBucketTagging",
    "PutBucketVersioning",
    "PutBucketWebsite",
    "PutObject",
    "PutObjectAcl",
    "PutObjectLegalHold",
    "PutObjectLockConfiguration",
    "PutObjectRetention",
    "PutObjectTagging",
    "PutPublicAccessBlock",
    "RestoreObject",
    "SelectObjectContent",
    "UploadPart",
    "UploadPartCopy",
    "WriteGetObjectResponse",
    "PostObject",
];

#[test]
fn action_for_covers_every_s3s_operation() {
    assert_eq!(S3S_OPERATIONS.len(), 99);
    for op in S3S_OPERATIONS {
        for versioned in [false, true] {
            let action = action_for(op, versioned);
            assert_ne!(action, UNKNOWN_ACTION, "{op}");
            validate_action(action).unwrap();
        }
    }
}

#[test]
fn wildcard_matcher_backtracks() {
    let pattern = |s| {
        Template::compile(s, false)
            .resolve(&Context::default())
            .unwrap()
    };
    assert!(wildcard_match(&pattern("a*b*c"), "aXbYbZc"));
    assert!(wildcard_match(&pattern("*"), ""));
    assert!(wildcard_match(&pattern("**a"), "bba"));
    assert!(!wildcard_match(&pattern("a*b"), "aXbY"));
    assert!(!wildcard_match(&pattern("?"), ""));
    assert!(wildcard_match(&pattern("é?"), "éü"));
}

#[test]
fn bucket_policies_need_principals_and_their_own_bucket() {
    let ok = policy(
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject",
            "Resource":["arn:aws:s3:::site","arn:aws:s3:::site/*"]}]}"#,
    );
    assert!(ok.check_bucket_policy("site").is_ok());
    assert!(ok.is_public());
    let e = ok.check_bucket_policy("sit").unwrap_err();
    assert!(e.0.contains("invalid resource"), "{e}");
    let e = ok.check_bucket_policy("site2").unwrap_err();
    assert!(e.0.contains("invalid resource"), "{e}");
    let no_principal = policy(
        r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::site/*"}]}"#,
    );
    let e = no_principal.check_bucket_policy("site").unwrap_err();
    assert!(e.0.contains("Principal"), "{e}");
    assert!(!no_principal.is_public());
    let conditioned = policy(
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject",
            "Resource":"arn:aws:s3:::site/*",
            "Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}"#,
    );
    assert!(!conditioned.is_public());
}

#[test]
fn bucket_policies_may_name_other_buckets_too() {
    let wide = |resources: &str| {
        policy(&format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":{resources}}}]}}"#
        ))
    };
    // Every resource that can be this bucket or one of its objects is enough.
    for ok in [
        r#""arn:aws:s3:::*""#,
        r#""*""#,
        r#""arn:aws:s3:::si*/*""#,
        r#"["arn:aws:s3:::other/*","arn:aws:s3:::site/*"]"#,
        r#""arn:aws:s3:::site/home/${aws:username}/*""#,
        r#""arn:aws:s3:::${aws:username}""#,
    ] {
        assert!(wide(ok).check_bucket_policy("site").is_ok(), "{ok}");
    }
    // A statement none of whose resources can be in the bucket is refused.
    for bad in [
        r#""arn:aws:s3:::other/*""#,
        r#"["arn:aws:s3:::other","arn:aws:s3:::sites/*"]"#,
        r#""arn:aws:s3:::site2""#,
        r#""arn:aws:iam::1:user/x""#,
    ] {
        let e = wide(bad).check_bucket_policy("site").unwrap_err();
        assert!(e.0.contains("Policy has invalid resource"), "{bad}: {e}");
    }
    // Accepted, it still matches only what its patterns match.
    let p = wide(r#"["arn:aws:s3:::other/*","arn:aws:s3:::site/a/*"]"#);
    assert_eq!(
        eval_plain(&p, "s3:GetObject", "arn:aws:s3:::site/a/x"),
        Deny
    );
    assert_eq!(
        eval_plain(&p, "s3:GetObject", "arn:aws:s3:::site/b"),
        Neither
    );
}

#[test]
fn prefixed_wildcard_matches() {
    use super::patterns::may_match_prefixed;
    let pattern = |s: &str| {
        Template::compile(s, false)
            .resolve(&Context::default())
            .unwrap()
    };
    assert!(may_match_prefixed(
        &pattern("arn:aws:s3:::*"),
        "arn:aws:s3:::b/"
    ));
    assert!(may_match_prefixed(
        &pattern("arn:aws:s3:::b/x*"),
        "arn:aws:s3:::b/"
    ));
    assert!(may_match_prefixed(
        &pattern("arn:aws:s3:::?/*"),
        "arn:aws:s3:::b/"
    ));
    assert!(!may_match_prefixed(
        &pattern("arn:aws:s3:::c/*"),
        "arn:aws:s3:::b/"
    ));
    assert!(!may_match_prefixed(
        &pattern("arn:aws:s3:::b"),
        "arn:aws:s3:::b/"
    ));
    assert!(!may_match_prefixed(
        &pattern("arn:aws:s3:::bb*"),
        "arn:aws:s3:::b/"
    ));
}

#[test]
fn not_principal_applies_to_everyone_it_does_not_name() {
    let c = Context::default();
    let deny = statements(
        r#"{"Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::111122223333:user/carol","arn:aws:iam::111122223333:root"]},"Action":"s3:*","Resource":"*"}"#,
    );
    let get = |p: &Policy, who| eval_as(p, who, "s3:GetObject", OBJ, &c);
    assert_eq!(get(&deny, Principal::User("carol")), Neither);
    assert_eq!(get(&deny, Principal::Root), Neither);
    assert_eq!(get(&deny, Principal::User("dave")), Deny);
    assert_eq!(get(&deny, Principal::Anonymous), Deny);
    // Without the account, the root credentials are denied like any other caller.
    let deny_all_but_carol = statements(
        r#"{"Effect":"Deny","NotPrincipal":{"AWS":"carol"},"Action":"s3:*","Resource":"*"}"#,
    );
    assert_eq!(get(&deny_all_but_carol, Principal::Root), Deny);
    // Allow with NotPrincipal grants everyone else, anonymous callers included.
    let allow = statements(
        r#"{"Effect":"Allow","NotPrincipal":{"AWS":"111122223333"},"Action":"s3:GetObject","Resource":"*"}"#,
    );
    assert_eq!(get(&allow, Principal::Anonymous), Allow);
    assert_eq!(get(&allow, Principal::User("dave")), Allow);
    assert_eq!(get(&allow, Principal::Root), Neither);
    assert!(allow.is_public());
    assert!(!deny.is_public());
    // An account principal names the root credentials, not the account's users.
    let account = statements(
        r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"s3:GetObject","Resource":"*"}"#,
    );
    assert_eq!(get(&account, Principal::Root), Allow);
    assert_eq!(get(&account, Principal::User("dave")), Neither);
}

/// The keys `set_header_keys` gives `op` for these headers.
fn header_ctx(op: &str, headers: &[(&str, &str)], now: u64) -> Context {
    let mut c = Context::default();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_string())
    };
    set_header_keys(&mut c, op, header, now);
    c
}

fn values<'c>(c: &'c Context, key: &str) -> Option<Vec<&'c str>> {
    c.get(key).map(|v| v.iter().map(String::as_str).collect())
}

#[test]
fn header_keys_of_object_writes() {
    let headers = [
        ("x-amz-acl", "public-read"),
        (
            "x-amz-grant-read",
            "uri=\"http://acs.amazonaws.com/groups/global/AllUsers\"",
        ),
        ("x-amz-grant-write", "id=\"w\""),
        ("x-amz-grant-read-acp", "id=\"r\""),
        ("x-amz-grant-write-acp", "id=\"wa\""),
        ("x-amz-grant-full-control", "id=\"fc\""),
        ("x-amz-metadata-directive", "REPLACE"),
        ("x-amz-server-side-encryption", "aws:kms"),
        ("x-amz-server-side-encryption-aws-kms-key-id", "k1"),
        ("x-amz-object-lock-mode", "GOVERNANCE"),
        (
            "x-amz-object-lock-retain-until-date",
            "2026-01-11T00:00:00.000Z",
        ),
        ("x-amz-object-lock-legal-hold", "ON"),
        ("x-amz-copy-source", "/src%20b/a%2Fb.txt?versionId=v1"),
    ];
    // 2026-01-01T12:00:00Z: 9.5 days before the retention ends.
    let now = 1_767_268_800;
    let c = header_ctx("CopyObject", &headers, now);
    for (key, want) in [
        ("s3:x-amz-acl", "public-read"),
        ("s3:x-amz-grant-write", "id=\"w\""),
        ("s3:x-amz-grant-read-acp", "id=\"r\""),
        ("s3:x-amz-grant-write-acp", "id=\"wa\""),
        ("s3:x-amz-grant-full-control", "id=\"fc\""),
        ("s3:x-amz-metadata-directive", "REPLACE"),
        ("s3:x-amz-server-side-encryption", "aws:kms"),
        ("s3:x-amz-server-side-encryption-aws-kms-key-id", "k1"),
        ("s3:object-lock-mode", "GOVERNANCE"),
        (
            "s3:object-lock-retain-until-date",
            "2026-01-11T00:00:00.000Z",
        ),
        ("s3:object-lock-remaining-retention-days", "10"),
        ("s3:object-lock-legal-hold", "ON"),
        ("s3:x-amz-copy-source", "src b/a/b.txt?versionId=v1"),
    ] {
        assert_eq!(values(&c, key), Some(vec![want]), "{key}");
    }
    assert!(values(&c, "s3:x-amz-grant-read").is_some());
    // PutObject has no copy source; UploadPartCopy has only that.
    let put = header_ctx("PutObject", &headers, now);
    assert_eq!(values(&put, "s3:x-amz-copy-source"), None);
    assert_eq!(values(&put, "s3:x-amz-acl"), Some(vec!["public-read"]));
    let part = header_ctx("UploadPartCopy", &headers, now);
    assert_eq!(
        values(&part, "s3:x-amz-copy-source"),
        Some(vec!["src b/a/b.txt?versionId=v1"])
    );
    assert_eq!(values(&part, "s3:x-amz-acl"), None);
    // ACL operations carry the ACL keys only; other operations none of them.
    let acl = header_ctx("PutObjectAcl", &headers, now);
    assert_eq!(values(&acl, "s3:x-amz-acl"), Some(vec!["public-read"]));
    assert_eq!(values(&acl, "s3:x-amz-server-side-encryption"), None);
    assert_eq!(values(&acl, "s3:object-lock-mode"), None);
    for op in ["GetObject", "DeleteObject", "UploadPart", "ListObjects"] {
        let c = header_ctx(op, &headers, now);
        assert_eq!(values(&c, "s3:x-amz-acl"), None, "{op}");
        assert_eq!(values(&c, "s3:object-lock-mode"), None, "{op}");
    }
}

#[test]
fn remaining_retention_days_round_up_and_stop_at_zero() {
    let days = |until: &str, now: u64| {
        let mut c = Context::default();
        set_retention(&mut c, Some("COMPLIANCE"), Some(until), now);
        assert_eq!(values(&c, "s3:object-lock-mode"), Some(vec!["COMPLIANCE"]));
        values(&c, "s3:object-lock-remaining-retention-days").map(|v| v[0].to_string())
    };
    let midnight = 1_767_225_600; // 2026-01-01T00:00:00Z
    assert_eq!(
        days("2026-01-31T00:00:00Z", midnight).as_deref(),
        Some("30")
    );
    assert_eq!(
        days("2026-01-31T00:00:00Z", midnight + 1).as_deref(),
        Some("30")
    );
    assert_eq!(days("2026-01-01T00:00:01Z", midnight).as_deref(), Some("1"));
    assert_eq!(days("2025-12-01T00:00:00Z", midnight).as_deref(), Some("0"));
    assert_eq!(days("not a date", midnight), None);
    let p = conditional(
        r#"{"NumericGreaterThanEquals":{"s3:object-lock-remaining-retention-days":"30"},
            "DateLessThan":{"s3:object-lock-retain-until-date":"2027-01-01T00:00:00Z"}}"#,
    );
    let with = |until: &str| {
        let mut c = Context::default();
        set_retention(&mut c, None, Some(until), midnight);
        check(&p, &c)
    };
    assert_eq!(with("2026-01-31T00:00:00Z"), Allow);
    assert_eq!(with("2026-01-30T00:00:00Z"), Neither);
    assert_eq!(with("2027-06-01T00:00:00Z"), Neither);
    let mut hold = Context::default();
    set_legal_hold(&mut hold, "ON");
    let p = conditional(r#"{"StringEquals":{"s3:object-lock-legal-hold":"ON"}}"#);
    assert_eq!(check(&p, &hold), Allow);
    assert_eq!(check(&p, &Context::default()), Neither);
}

fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn request_object_tags_and_their_keys() {
    let with_tags = |pairs: &[(&str, &str)]| {
        let mut c = Context::default();
        set_request_tags(&mut c, &tags(pairs));
        c
    };
    let team = conditional(r#"{"StringEquals":{"s3:RequestObjectTag/team":"blue"}}"#);
    assert_eq!(check(&team, &with_tags(&[("team", "blue")])), Allow);
    assert_eq!(check(&team, &with_tags(&[("team", "red")])), Neither);
    assert_eq!(check(&team, &with_tags(&[("other", "blue")])), Neither);
    // Only these keys, and at least one of them: AWS's documented pairing.
    let only = conditional(
        r#"{"ForAllValues:StringEquals":{"s3:RequestObjectTagKeys":["team","env"]},
            "ForAnyValue:StringEquals":{"s3:RequestObjectTagKeys":["team","env"]}}"#,
    );
    assert_eq!(check(&only, &with_tags(&[("team", "a")])), Allow);
    assert_eq!(
        check(&only, &with_tags(&[("team", "a"), ("env", "b")])),
        Allow
    );
    assert_eq!(
        check(&only, &with_tags(&[("team", "a"), ("x", "b")])),
        Neither
    );
    assert_eq!(check(&only, &with_tags(&[])), Neither);
    // ForAllValues alone holds for a request without tags (the empty set).
    let all = conditional(r#"{"ForAllValues:StringEquals":{"s3:RequestObjectTagKeys":"team"}}"#);
    assert_eq!(check(&all, &with_tags(&[])), Allow);
    assert_eq!(check(&all, &Context::default()), Allow);
    assert_eq!(check(&all, &with_tags(&[("x", "1")])), Neither);
    // The key name after the slash is case-insensitive like every condition key.
    let caps = conditional(r#"{"StringEquals":{"s3:RequestObjectTag/TEAM":"blue"}}"#);
    assert_eq!(check(&caps, &with_tags(&[("team", "blue")])), Allow);
}

#[test]
fn existing_object_tags() {
    let mut tagged = Context::default();
    set_existing_tags(&mut tagged, &tags(&[("class", "secret"), ("team", "blue")]));
    let deny = statements(
        r#"{"Effect":"Allow","Action":"s3:*","Resource":"*"},
           {"Effect":"Deny","Action":"s3:GetObject","Resource":"*",
            "Condition":{"StringEquals":{"s3:ExistingObjectTag/class":"secret"}}}"#,
    );
    assert_eq!(check(&deny, &tagged), Deny);
    assert_eq!(check(&deny, &Context::default()), Allow);
    assert!(deny.tests_key(is_existing_tag_key));
    assert!(!canned("readwrite").unwrap().tests_key(is_existing_tag_key));
    assert!(is_existing_tag_key("S3:existingobjecttag/x"));
    assert!(!is_existing_tag_key("s3:RequestObjectTag/x"));
    // Reads and sub-resource writes carry them; PutObject and DeleteObject never do.
    for op in [
        "GetObject",
        "HeadObject",
        "GetObjectTagging",
        "PutObjectAcl",
    ] {
        assert!(reads_existing_tags(op), "{op}");
    }
    for op in ["PutObject", "DeleteObject", "CopyObject", "ListObjects"] {
        assert!(!reads_existing_tags(op), "{op}");
    }
}

#[test]
fn body_keys_wait_for_the_body() {
    assert!(is_body_key("PutObjectTagging", "s3:RequestObjectTagKeys"));
    assert!(is_body_key("PutObjectTagging", "s3:requestobjecttag/team"));
    assert!(is_body_key("PutObjectRetention", "s3:object-lock-mode"));
    assert!(is_body_key(
        "PutObjectRetention",
        "s3:object-lock-remaining-retention-days"
    ));
    assert!(is_body_key(
        "PutObjectLegalHold",
        "s3:object-lock-legal-hold"
    ));
    assert!(!is_body_key("PutObjectLegalHold", "s3:object-lock-mode"));
    assert!(!is_body_key("PutObject", "s3:RequestObjectTagKeys"));
    assert!(has_body_keys("PutObjectTagging") && !has_body_keys("PutObject"));
}
