//! A deliberately small template language for job-type Dockerfile templates (a Jinja subset).
//!
//! * `{{ name }}`, `{{ manifest.python.entrypoint_path }}`: a value. Strings as they are, numbers
//!   and booleans as text, null as nothing, lists of scalars joined with spaces. Mappings can't be
//!   printed. Values go verbatim into quoted Dockerfile strings and JSON arrays, so a value with a
//!   line break, `"`, `\`, `$` or a control character is refused, except for the variables that
//!   are blocks of Dockerfile lines (`env_vars`, `env_lines`).
//! * `{% if expr %}…{% else %}…{% endif %}`: `expr` is a name or `not name`; null, false, 0, "",
//!   empty lists and empty mappings are false.
//! * `{% for x in list %}…{% endfor %}`, `{% for key, value in mapping %}…{% endfor %}`.
//! * `{# comment #}`. Jinja's whitespace-control dashes (`{%- … -%}`) are accepted and ignored.
//!
//! An unknown top-level name is an error (it is a typo in the template); a missing key inside a
//! mapping is null. As in Jinja with `trim_blocks` and `lstrip_blocks`, a line holding only a
//! `{% %}` or `{# #}` tag leaves no blank line behind.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template line {line}: {message}")]
pub struct TemplateError {
    pub line: usize,
    pub message: String,
}

fn terr(line: usize, message: impl Into<String>) -> TemplateError {
    TemplateError {
        line,
        message: message.into(),
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Expr {
    negate: bool,
    path: Vec<String>,
    line: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Print(Expr),
    If {
        cond: Expr,
        then: Vec<Node>,
        otherwise: Vec<Node>,
    },
    For {
        first: String,
        second: Option<String>,
        iter: Expr,
        body: Vec<Node>,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Text(String),
    Print(String, usize),
    Tag(String, usize),
}

/// Splits the source into text, `{{ }}` and `{% %}` tokens (comments dropped), applying the
/// trim/lstrip rules around block tags.
fn tokenize(src: &str) -> Result<Vec<Token>, TemplateError> {
    let mut tokens = Vec::new();
    let mut rest = src;
    let mut line = 1usize;
    let mut text = String::new();
    while !rest.is_empty() {
        let next = ["{{", "{%", "{#"]
            .iter()
            .filter_map(|open| rest.find(open).map(|i| (i, *open)))
            .min_by_key(|(i, _)| *i);
        let Some((start, open)) = next else {
            text.push_str(rest);
            break;
        };
        text.push_str(&rest[..start]);
        line += rest[..start].matches('\n').count();
        let close = match open {
            "{{" => "}}",
            "{%" => "%}",
            _ => "#}",
        };
        let after_open = &rest[start + 2..];
        let end = after_open
            .find(close)
            .ok_or_else(|| terr(line, format!("`{open}` is never closed with `{close}`")))?;
        // Jinja's whitespace-control dashes (`{%- x -%}`) are accepted; the trimming rules
        // below apply to every block tag anyway.
        let inner = after_open[..end]
            .strip_prefix('-')
            .unwrap_or(&after_open[..end]);
        let inner = inner.strip_suffix('-').unwrap_or(inner);
        let tag_line = line;
        line += after_open[..end].matches('\n').count();
        rest = &after_open[end + 2..];
        if open == "{{" {
            push_text(&mut tokens, &mut text);
            tokens.push(Token::Print(inner.trim().to_string(), tag_line));
            continue;
        }
        // Block tag or comment: lstrip the indentation before it, trim the newline after it.
        if let Some(nl) = text.rfind('\n') {
            if text[nl + 1..].chars().all(|c| c == ' ' || c == '\t') {
                text.truncate(nl + 1);
            }
        } else if text.chars().all(|c| c == ' ' || c == '\t')
            && !matches!(tokens.last(), Some(Token::Print(..)) | Some(Token::Text(_)))
        {
            text.clear();
        }
        if let Some(stripped) = rest.strip_prefix('\n') {
            rest = stripped;
            line += 1;
        } else if let Some(stripped) = rest.strip_prefix("\r\n") {
            rest = stripped;
            line += 1;
        }
        push_text(&mut tokens, &mut text);
        if open == "{%" {
            tokens.push(Token::Tag(inner.trim().to_string(), tag_line));
        }
    }
    push_text(&mut tokens, &mut text);
    Ok(tokens)
}

fn push_text(tokens: &mut Vec<Token>, text: &mut String) {
    if !text.is_empty() {
        tokens.push(Token::Text(std::mem::take(text)));
    }
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_expr(src: &str, line: usize) -> Result<Expr, TemplateError> {
    let src = src.trim();
    let (negate, body) = match src.strip_prefix("not ") {
        Some(rest) => (true, rest.trim()),
        None => (false, src),
    };
    let path: Vec<String> = body.split('.').map(|p| p.trim().to_string()).collect();
    if body.is_empty() || !path.iter().all(|p| is_ident(p)) {
        return Err(terr(
            line,
            format!(
                "`{src}` is not a variable name (only names, dotted paths and `not` are supported)"
            ),
        ));
    }
    Ok(Expr { negate, path, line })
}

/// Where parsing of a block stopped.
enum Stop {
    Eof,
    Else(usize),
    EndIf(usize),
    EndFor(usize),
}

fn parse_nodes(
    tokens: &mut std::iter::Peekable<std::vec::IntoIter<Token>>,
) -> Result<(Vec<Node>, Stop), TemplateError> {
    let mut nodes = Vec::new();
    while let Some(token) = tokens.next() {
        match token {
            Token::Text(t) => nodes.push(Node::Text(t)),
            Token::Print(expr, line) => {
                let e = parse_expr(&expr, line)?;
                if e.negate {
                    return Err(terr(line, "`not` can only be used in `{% if %}`"));
                }
                nodes.push(Node::Print(e));
            }
            Token::Tag(tag, line) => {
                let (keyword, rest) = tag
                    .split_once(char::is_whitespace)
                    .unwrap_or((tag.as_str(), ""));
                match keyword {
                    "if" => {
                        let cond = parse_expr(rest, line)?;
                        let (then, end) = parse_nodes(tokens)?;
                        let otherwise = match end {
                            Stop::EndIf(_) => Vec::new(),
                            Stop::Else(_) => match parse_nodes(tokens)? {
                                (nodes, Stop::EndIf(_)) => nodes,
                                _ => return Err(terr(line, "`{% if %}` without `{% endif %}`")),
                            },
                            _ => return Err(terr(line, "`{% if %}` without `{% endif %}`")),
                        };
                        nodes.push(Node::If {
                            cond,
                            then,
                            otherwise,
                        });
                    }
                    "for" => {
                        let (vars, iter) = rest
                            .split_once(" in ")
                            .ok_or_else(|| terr(line, "expected `{% for x in list %}`"))?;
                        let names: Vec<String> =
                            vars.split(',').map(|v| v.trim().to_string()).collect();
                        if names.is_empty() || names.len() > 2 || !names.iter().all(|n| is_ident(n))
                        {
                            return Err(terr(line, format!("bad loop variables `{vars}`")));
                        }
                        let iter = parse_expr(iter, line)?;
                        if iter.negate {
                            return Err(terr(line, "`not` can't be iterated"));
                        }
                        let (body, end) = parse_nodes(tokens)?;
                        if !matches!(end, Stop::EndFor(_)) {
                            return Err(terr(line, "`{% for %}` without `{% endfor %}`"));
                        }
                        nodes.push(Node::For {
                            first: names[0].clone(),
                            second: names.get(1).cloned(),
                            iter,
                            body,
                        });
                    }
                    "else" if rest.is_empty() => return Ok((nodes, Stop::Else(line))),
                    "endif" if rest.is_empty() => return Ok((nodes, Stop::EndIf(line))),
                    "endfor" if rest.is_empty() => return Ok((nodes, Stop::EndFor(line))),
                    _ => return Err(terr(line, format!("unsupported tag `{{% {tag} %}}`"))),
                }
            }
        }
    }
    Ok((nodes, Stop::Eof))
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    nodes: Vec<Node>,
}

impl Template {
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        let mut tokens = tokenize(src)?.into_iter().peekable();
        let (nodes, end) = parse_nodes(&mut tokens)?;
        match end {
            Stop::Eof => Ok(Template { nodes }),
            Stop::Else(line) => Err(terr(line, "`{% else %}` outside of `{% if %}`")),
            Stop::EndIf(line) => Err(terr(line, "`{% endif %}` without `{% if %}`")),
            Stop::EndFor(line) => Err(terr(line, "`{% endfor %}` without `{% for %}`")),
        }
    }

    /// Renders with `vars` (a JSON object); variables in `multiline` may contain line breaks.
    pub fn render(
        &self,
        vars: &BTreeMap<String, Value>,
        multiline: &BTreeSet<&str>,
    ) -> Result<String, TemplateError> {
        let mut out = String::new();
        let mut scopes: Vec<(String, Value)> = Vec::new();
        render_nodes(&self.nodes, vars, multiline, &mut scopes, &mut out)?;
        Ok(out)
    }
}

/// Parses and renders in one go.
pub fn render(
    src: &str,
    vars: &BTreeMap<String, Value>,
    multiline: &BTreeSet<&str>,
) -> Result<String, TemplateError> {
    Template::parse(src)?.render(vars, multiline)
}

fn lookup(
    expr: &Expr,
    vars: &BTreeMap<String, Value>,
    scopes: &[(String, Value)],
) -> Result<Value, TemplateError> {
    let head = &expr.path[0];
    let mut value = if let Some((_, v)) = scopes.iter().rev().find(|(name, _)| name == head) {
        v.clone()
    } else if let Some(v) = vars.get(head) {
        v.clone()
    } else {
        return Err(terr(expr.line, format!("unknown variable `{head}`")));
    };
    for key in &expr.path[1..] {
        value = match value {
            Value::Object(mut map) => map.remove(key).unwrap_or(Value::Null),
            _ => Value::Null,
        };
    }
    Ok(value)
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => Some(String::new()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

fn render_nodes(
    nodes: &[Node],
    vars: &BTreeMap<String, Value>,
    multiline: &BTreeSet<&str>,
    scopes: &mut Vec<(String, Value)>,
    out: &mut String,
) -> Result<(), TemplateError> {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Print(expr) => {
                let value = lookup(expr, vars, scopes)?;
                let name = expr.path.join(".");
                let text = match &value {
                    Value::Array(items) => items
                        .iter()
                        .map(|item| {
                            scalar_text(item).ok_or_else(|| {
                                terr(
                                    expr.line,
                                    format!("`{name}` holds nested values and can't be printed"),
                                )
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()?
                        .join(" "),
                    Value::Object(_) => {
                        return Err(terr(
                            expr.line,
                            format!("`{name}` is a mapping and can't be printed"),
                        ))
                    }
                    other => scalar_text(other).unwrap_or_default(),
                };
                if !multiline.contains(name.as_str()) {
                    if text.contains('\n') || text.contains('\r') {
                        return Err(terr(
                            expr.line,
                            format!("the value of `{name}` contains a line break"),
                        ));
                    }
                    if text
                        .chars()
                        .any(|c| matches!(c, '"' | '\\' | '$') || c.is_control())
                    {
                        return Err(terr(
                            expr.line,
                            format!("the value of `{name}` contains a character that is not allowed in a Dockerfile value (quote, backslash, $ or control)"),
                        ));
                    }
                }
                out.push_str(&text);
            }
            Node::If {
                cond,
                then,
                otherwise,
            } => {
                let value = lookup(cond, vars, scopes)?;
                let branch = if truthy(&value) != cond.negate {
                    then
                } else {
                    otherwise
                };
                render_nodes(branch, vars, multiline, scopes, out)?;
            }
            Node::For {
                first,
                second,
                iter,
                body,
            } => {
                let value = lookup(iter, vars, scopes)?;
                let items: Vec<(Value, Option<Value>)> = match (value, second) {
                    (Value::Null, _) => Vec::new(),
                    (Value::Array(items), None) => items.into_iter().map(|v| (v, None)).collect(),
                    (Value::Object(map), None) => map
                        .into_iter()
                        .map(|(k, _)| (Value::String(k), None))
                        .collect(),
                    (Value::Object(map), Some(_)) => map
                        .into_iter()
                        .map(|(k, v)| (Value::String(k), Some(v)))
                        .collect(),
                    (Value::Array(_), Some(_)) => {
                        return Err(terr(iter.line, "two loop variables need a mapping"))
                    }
                    _ => {
                        return Err(terr(
                            iter.line,
                            format!("`{}` is not a list or a mapping", iter.path.join(".")),
                        ))
                    }
                };
                for (a, b) in items {
                    scopes.push((first.clone(), a));
                    if let (Some(name), Some(b)) = (second, b) {
                        scopes.push((name.clone(), b));
                    }
                    let result = render_nodes(body, vars, multiline, scopes, out);
                    scopes.pop();
                    if second.is_some() {
                        scopes.pop();
                    }
                    result?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(v: Value) -> BTreeMap<String, Value> {
        v.as_object().unwrap().clone().into_iter().collect()
    }

    fn r(src: &str, v: Value) -> Result<String, TemplateError> {
        render(src, &vars(v), &BTreeSet::from(["env_vars"]))
    }

    #[test]
    fn substitutes_variables_and_paths() {
        let out = r(
            "FROM {{ base_image }}\nENV FATMAN_NAME=\"{{manifest.name}}\" PORT={{ wrapper_properties.port }}\nX={{ missing_key.deeper }}|{{ manifest.absent }}|{{ flag }}|{{ list }}\n",
            json!({
                "base_image": "reg/racetrack/fatman-base/python3:1.0.0",
                "manifest": {"name": "adder"},
                "wrapper_properties": {"port": 7004},
                "missing_key": null,
                "flag": true,
                "list": ["curl", "git"],
            }),
        )
        .unwrap();
        assert_eq!(
            out,
            "FROM reg/racetrack/fatman-base/python3:1.0.0\nENV FATMAN_NAME=\"adder\" PORT=7004\nX=||true|curl git\n"
        );
    }

    #[test]
    fn if_else_and_not_with_trimmed_tag_lines() {
        let src = "A\n{% if system_dependencies %}\nRUN apt-get install -y {{ system_dependencies }}\n{% else %}\n# none\n{% endif %}\n{% if not requirements_path %}\nNO_REQ\n{% endif %}\nZ\n";
        let out = r(
            src,
            json!({"system_dependencies": "curl git", "requirements_path": ""}),
        )
        .unwrap();
        assert_eq!(out, "A\nRUN apt-get install -y curl git\nNO_REQ\nZ\n");
        let out = r(
            src,
            json!({"system_dependencies": "", "requirements_path": "req.txt"}),
        )
        .unwrap();
        assert_eq!(out, "A\n# none\nZ\n");
    }

    #[test]
    fn indented_tags_leave_no_blank_lines() {
        let src = "A\n  {% if x %}\n  B\n  {% endif %}\nC\n";
        assert_eq!(r(src, json!({"x": 1})).unwrap(), "A\n  B\nC\n");
        assert_eq!(r(src, json!({"x": 0})).unwrap(), "A\nC\n");
    }

    #[test]
    fn for_loops_over_lists_and_mappings() {
        let src = "{% for k, v in env %}\nENV {{ k }}=\"{{ v }}\"\n{% endfor %}\n{% for p in pkgs %}[{{ p }}]{% endfor %}\n";
        let out = r(
            src,
            json!({"env": {"B": "2", "A": "1"}, "pkgs": ["x", "y"]}),
        )
        .unwrap();
        // As in Jinja, the newline right after a block tag is dropped, also at the end.
        assert_eq!(out, "ENV A=\"1\"\nENV B=\"2\"\n[x][y]");
        // A null iterable loops zero times.
        assert_eq!(
            r("{% for p in pkgs %}x{% endfor %}", json!({"pkgs": null})).unwrap(),
            ""
        );
    }

    #[test]
    fn unsafe_values_and_dash_markers() {
        let v = json!({"p": "a\"b", "d": "$HOME", "ok": "x.py"});
        assert!(r("CMD [\"{{ p }}\"]", v.clone())
            .unwrap_err()
            .message
            .contains("not allowed"));
        assert!(r("{{ d }}", v.clone()).is_err());
        assert_eq!(
            r("A\n{%- if ok -%}\nB {{- ok -}}\n{%- endif %}\n", v).unwrap(),
            "A\nB x.py\n"
        );
    }

    #[test]
    fn comments_are_dropped() {
        assert_eq!(r("{# hello #}\nA{# x #}B\n", json!({})).unwrap(), "AB\n");
    }

    #[test]
    fn multiline_values_only_where_allowed() {
        let v = json!({"env_vars": "ARG A\nENV A=$A\n", "entrypoint_path": "x\nRUN evil"});
        assert_eq!(r("{{ env_vars }}", v.clone()).unwrap(), "ARG A\nENV A=$A\n");
        let err = r("CMD {{ entrypoint_path }}", v).unwrap_err();
        assert!(err.message.contains("line break"), "{err}");
    }

    #[test]
    fn errors_name_the_line() {
        let err = r("A\nB {{ nope }}\n", json!({})).unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.message.contains("unknown variable `nope`"));
        assert_eq!(r("{% if x %}\nA\n", json!({"x": 1})).unwrap_err().line, 1);
        assert!(r("{{ a + b }}", json!({})).is_err());
        assert!(r("{% endif %}", json!({})).is_err());
        assert!(r("{{ open", json!({})).is_err());
        assert!(r("{% while x %}{% endwhile %}", json!({"x": 1})).is_err());
        assert!(r("{{ m }}", json!({"m": {"a": 1}}))
            .unwrap_err()
            .message
            .contains("mapping"));
    }
}
