//! The parser against the queries AWS documents, and its refusals.

use super::*;
use crate::select::value::Value;

fn field(name: &str) -> Step {
    Step::Field {
        name: name.into(),
        exact: false,
    }
}

#[test]
fn star_from_s3object_with_alias_and_paths() {
    let q = parse("SELECT * FROM S3Object[*].a.b s WHERE s.c[0] = 'x' LIMIT 5").unwrap();
    assert_eq!(q.items, None);
    assert_eq!(q.from, vec![field("a"), field("b")]);
    assert_eq!(q.limit, Some(5));
    let Some(Expr::Binary(BinOp::Eq, left, _)) = q.filter else {
        panic!("{:?}", q.filter)
    };
    assert_eq!(*left, Expr::Path(vec![field("c"), Step::Index(0)]));
}

#[test]
fn columns_aliases_and_derived_names() {
    let q =
        parse("select _1, s._2 AS two, s.name, \"Quoted\" q, _1 || 'x' from s3object s").unwrap();
    let items = q.items.unwrap();
    let names: Vec<_> = items.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["_1", "two", "name", "q", "_5"]);
    assert_eq!(items[0].expr, Expr::Column(0, vec![]));
    assert_eq!(items[1].expr, Expr::Column(1, vec![]));
    assert_eq!(
        items[3].expr,
        Expr::Path(vec![Step::Field {
            name: "Quoted".into(),
            exact: true
        }])
    );
}

#[test]
fn operators_bind_as_sql_says() {
    let q = parse("SELECT * FROM S3Object WHERE NOT a = 1 OR b > 2 AND c LIKE 'x%' ESCAPE '!'")
        .unwrap();
    let Some(Expr::Binary(BinOp::Or, left, right)) = q.filter else {
        panic!()
    };
    assert!(matches!(*left, Expr::Not(_)));
    let Expr::Binary(BinOp::And, _, like) = *right else {
        panic!()
    };
    assert!(matches!(
        *like,
        Expr::Like {
            negated: false,
            escape: Some(_),
            ..
        }
    ));
    let q = parse("SELECT 1 + 2 * 3 - -4 FROM S3Object").unwrap();
    let e = &q.items.unwrap()[0].expr;
    assert!(matches!(e, Expr::Binary(BinOp::Sub, _, r) if **r == Expr::Lit(Value::Int(-4))));
}

#[test]
fn predicates_functions_and_aggregates() {
    for sql in [
        "SELECT * FROM S3Object WHERE a NOT BETWEEN 1 AND 2 AND b IN (1, 'x') AND c IS NOT NULL",
        "SELECT CAST(a AS DECIMAL(10,2)), SUBSTRING(b FROM 2 FOR 3), SUBSTRING(b, 2), TRIM(LEADING 'x' FROM b), TRIM(b) FROM S3Object",
        "SELECT EXTRACT(YEAR FROM TO_TIMESTAMP(a)), DATE_ADD(day, 1, UTCNOW()), DATE_DIFF(hour, a, b) FROM S3Object",
        "SELECT CASE WHEN a > 1 THEN 'big' ELSE 'small' END, CASE a WHEN 1 THEN 'one' END, COALESCE(a, b), NULLIF(a, 0) FROM S3Object",
    ] {
        parse(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let q = parse("SELECT COUNT(*), SUM(CAST(_2 AS INT)) / COUNT(_2) FROM S3Object").unwrap();
    assert_eq!(q.aggregates.len(), 3);
    assert_eq!(q.aggregates[0].arg, None);
}

#[test]
fn errors_name_the_token_and_where_it_is() {
    let e = parse("SELECT a FROM S3Object WHERE a = = 1").unwrap_err();
    assert_eq!(e.code(), "ParseUnexpectedToken");
    assert!(e.to_string().contains("line 1, column 34"), "{e}");
    let e = parse("SELECT a\nFROM S3Object WHRE a = 1").unwrap_err();
    assert!(e.to_string().contains("line 2, column 20"), "{e}");
    assert_eq!(parse("SELECT").unwrap_err().code(), "ParseUnexpectedToken");
    assert_eq!(
        parse("SELECT a FROM t").unwrap_err().code(),
        "ParseUnexpectedToken"
    );
    assert_eq!(
        parse("SELECT FOO(a) FROM S3Object").unwrap_err().code(),
        "ParseUnsupportedSyntax"
    );
    assert_eq!(
        parse("SELECT a FROM S3Object ORDER BY a")
            .unwrap_err()
            .code(),
        "ParseUnsupportedSyntax"
    );
    assert_eq!(
        parse("SELECT _0 FROM S3Object").unwrap_err().code(),
        "InvalidColumnIndex"
    );
    assert_eq!(
        parse("SELECT a, COUNT(*) FROM S3Object")
            .unwrap_err()
            .code(),
        "InvalidQuery"
    );
    assert_eq!(
        parse("SELECT 'abc FROM S3Object").unwrap_err().code(),
        "ParseUnexpectedToken"
    );
}
