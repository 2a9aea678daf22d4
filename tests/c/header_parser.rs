//! A small parser for the declarations of include/remotemedia_webrtc.h, shared by
//! tests/header.rs and tests/c_api.rs (`#[path = "c/header_parser.rs"] mod header_parser;`).
//!
//! It understands what cbindgen emits for this crate: comments, `#define`s, `#ifdef
//! __cplusplus` blocks, typedefs of enums, structs, scalars and function pointers, and
//! function prototypes. Anything else is an error, so that a declaration the tests do not
//! understand fails them instead of being skipped.
#![allow(dead_code)]

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// Normalised type: tokens separated by one space, e.g. `const char *`, `size_t *`.
    pub ty: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    pub name: String,
    /// Normalised return type, e.g. `rmw_status_t`, `const char *`, `void`.
    pub ret: String,
    pub params: Vec<Param>,
    /// The declaration as written (whitespace collapsed), for messages.
    pub decl: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeDef {
    Enum,
    Struct,
    /// `typedef RET (*NAME)(...)`
    FnPtr,
    /// `typedef TARGET NAME` (TARGET normalised).
    Alias(String),
}

#[derive(Debug, Default)]
pub struct Header {
    pub functions: Vec<Function>,
    pub typedefs: BTreeMap<String, TypeDef>,
}

impl Header {
    pub fn function(&self, name: &str) -> Option<&Function> {
        self.functions.iter().find(|f| f.name == name)
    }
}

/// Removes `/* */` and `//` comments (string and character literals are kept intact).
fn strip_comments(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let end = src[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 2);
                // Keep line structure for the preprocessor pass.
                out.extend(src[i..end].bytes().filter(|&c| c == b'\n'));
                out.push(b' ');
                i = end;
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            q @ (b'"' | b'\'') => {
                out.push(q);
                i += 1;
                while i < b.len() && b[i] != q {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        out.push(b[i]);
                        i += 1;
                    }
                    out.push(b[i]);
                    i += 1;
                }
                if i < b.len() {
                    out.push(q);
                    i += 1;
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).expect("comment stripping keeps UTF-8")
}

/// Drops preprocessor lines, and the contents of `#ifdef __cplusplus` / `#if
/// defined(__cplusplus)` blocks (their `#else` branch is kept).
fn strip_preprocessor(src: &str) -> Result<String, String> {
    // Stack of open conditionals: true if the branch currently open is C++-only.
    let mut stack: Vec<(bool, bool)> = Vec::new(); // (is_cplusplus_conditional, skipping)
    let mut out = String::new();
    let mut lines = src.lines();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        if let Some(directive) = t.strip_prefix('#') {
            // Swallow continuation lines.
            let mut full = directive.to_string();
            let mut cur = line.to_string();
            while cur.trim_end().ends_with('\\') {
                match lines.next() {
                    Some(next) => {
                        full.push_str(next);
                        cur = next.to_string();
                    }
                    None => break,
                }
            }
            let d = full.trim();
            let word = d.split(|c: char| !c.is_ascii_alphanumeric() && c != '_').next().unwrap_or("");
            match word {
                "ifdef" | "if" | "ifndef" => {
                    let is_cpp = word != "ifndef" && d.contains("__cplusplus");
                    stack.push((is_cpp, is_cpp));
                }
                "else" => {
                    let top = stack.last_mut().ok_or("#else without #if")?;
                    if top.0 {
                        top.1 = !top.1;
                    }
                }
                "elif" => {
                    let top = stack.last_mut().ok_or("#elif without #if")?;
                    if top.0 {
                        return Err("#elif in an #ifdef __cplusplus block is not supported".into());
                    }
                }
                "endif" => {
                    stack.pop().ok_or("#endif without #if")?;
                }
                "define" | "include" | "pragma" | "undef" | "error" | "warning" | "" => {}
                other => return Err(format!("unknown preprocessor directive #{other}")),
            }
            out.push('\n');
            continue;
        }
        if stack.iter().any(|&(_, skipping)| skipping) {
            out.push('\n');
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !stack.is_empty() {
        return Err("unterminated #if".into());
    }
    Ok(out)
}

/// Splits on `;` outside braces and parentheses.
fn statements(src: &str) -> Result<Vec<String>, String> {
    let mut v = Vec::new();
    let (mut depth_brace, mut depth_paren) = (0i32, 0i32);
    let mut cur = String::new();
    for c in src.chars() {
        match c {
            '{' => depth_brace += 1,
            '}' => depth_brace -= 1,
            '(' => depth_paren += 1,
            ')' => depth_paren -= 1,
            _ => {}
        }
        if depth_brace < 0 || depth_paren < 0 {
            return Err(format!("unbalanced braces or parentheses near: {}", collapse(&cur)));
        }
        if c == ';' && depth_brace == 0 && depth_paren == 0 {
            v.push(collapse(&cur));
            cur.clear();
        } else {
            cur.push(c);
        }
    }
    if !collapse(&cur).is_empty() {
        return Err(format!("trailing text without ';': {}", collapse(&cur)));
    }
    Ok(v.into_iter().filter(|s| !s.is_empty()).collect())
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn is_ident(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch == '_' || ch.is_ascii_alphabetic())
        && c.all(|ch| ch == '_' || ch.is_ascii_alphanumeric())
}

/// Tokens of a declarator without parentheses: identifiers and `*`.
fn tokens(s: &str) -> Result<Vec<String>, String> {
    let mut v = Vec::new();
    for word in s.replace('*', " * ").split_whitespace() {
        if word == "*" || is_ident(word) {
            v.push(word.to_string());
        } else {
            return Err(format!("unexpected token `{word}` in `{s}`"));
        }
    }
    Ok(v)
}

/// `const char *` from tokens.
fn type_of(tokens: &[String]) -> String {
    tokens.join(" ")
}

fn parse_param(p: &str, decl: &str) -> Result<Param, String> {
    if p.contains('(') || p.contains('[') {
        return Err(format!("parameter `{p}` (function pointer or array written inline) is not supported in `{decl}`"));
    }
    let t = tokens(p).map_err(|e| format!("{e} in `{decl}`"))?;
    match t.split_last() {
        Some((name, ty)) if !ty.is_empty() && name != "*" && !matches!(name.as_str(), "const" | "volatile") => {
            Ok(Param { ty: type_of(ty), name: name.clone() })
        }
        _ => Err(format!("parameter `{p}` has no name in `{decl}`")),
    }
}

fn parse_function(s: &str) -> Result<Function, String> {
    let open = s.find('(').ok_or_else(|| format!("not a function: `{s}`"))?;
    let close = s.rfind(')').ok_or_else(|| format!("no `)` in `{s}`"))?;
    if !s[close + 1..].trim().is_empty() {
        return Err(format!("text after the parameter list in `{s}`"));
    }
    let head = tokens(&s[..open]).map_err(|e| format!("{e} (declaration `{s}`)"))?;
    let (name, ret) = head.split_last().ok_or_else(|| format!("no name in `{s}`"))?;
    if ret.is_empty() || name == "*" {
        return Err(format!("cannot find the return type and name of `{s}`"));
    }
    let ret: Vec<String> =
        ret.iter().filter(|t| !matches!(t.as_str(), "extern" | "static" | "inline")).cloned().collect();
    let inner = &s[open + 1..close];
    // Split the parameter list on top-level commas.
    let mut params = Vec::new();
    let (mut depth, mut cur) = (0, String::new());
    for c in inner.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if c == ',' && depth == 0 {
            params.push(cur.trim().to_string());
            cur.clear();
        } else {
            cur.push(c);
        }
    }
    params.push(cur.trim().to_string());
    let params = if params.len() == 1 && (params[0] == "void" || params[0].is_empty()) {
        if params[0].is_empty() {
            return Err(format!("`{s}`: an empty parameter list is not a prototype in C; write (void)"));
        }
        Vec::new()
    } else {
        params.iter().map(|p| parse_param(p, s)).collect::<Result<Vec<_>, _>>()?
    };
    Ok(Function { name: name.clone(), ret: type_of(&ret), params, decl: s.to_string() })
}

fn parse_typedef(s: &str, h: &mut Header) -> Result<(), String> {
    let body = s.strip_prefix("typedef ").unwrap();
    if let Some(close) = body.rfind('}') {
        let name = body[close + 1..].trim();
        if !is_ident(name) {
            return Err(format!("cannot find the name of `{s}`"));
        }
        let kind = if body.starts_with("enum") {
            TypeDef::Enum
        } else if body.starts_with("struct") || body.starts_with("union") {
            TypeDef::Struct
        } else {
            return Err(format!("unknown typedef `{s}`"));
        };
        h.typedefs.insert(name.to_string(), kind);
        return Ok(());
    }
    if let Some(start) = body.find("(*") {
        let rest = &body[start + 2..];
        let end = rest.find(')').ok_or_else(|| format!("cannot parse `{s}`"))?;
        let name = rest[..end].trim();
        if !is_ident(name) {
            return Err(format!("cannot find the name of `{s}`"));
        }
        h.typedefs.insert(name.to_string(), TypeDef::FnPtr);
        return Ok(());
    }
    let t = tokens(body).map_err(|e| format!("{e} (typedef `{s}`)"))?;
    match t.split_last() {
        Some((name, target)) if !target.is_empty() && is_ident(name) => {
            h.typedefs.insert(name.clone(), TypeDef::Alias(type_of(target)));
            Ok(())
        }
        _ => Err(format!("cannot parse typedef `{s}`")),
    }
}

/// Parses the header text.
pub fn parse(text: &str) -> Result<Header, String> {
    let code = strip_preprocessor(&strip_comments(text))?;
    let mut h = Header::default();
    for s in statements(&code)? {
        if s.starts_with("typedef ") {
            parse_typedef(&s, &mut h)?;
        } else if (s.starts_with("enum ") || s.starts_with("struct ") || s.starts_with("union ")) && s.ends_with('}') {
            // A tagged definition without typedef: `struct x { ... }`.
            let tag: String = s.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
            h.typedefs.insert(tag, if s.starts_with("enum") { TypeDef::Enum } else { TypeDef::Struct });
        } else if s.contains('(') {
            let f = parse_function(&s)?;
            if h.function(&f.name).is_some() {
                return Err(format!("{} is declared twice", f.name));
            }
            h.functions.push(f);
        } else {
            return Err(format!("cannot parse declaration `{s}`"));
        }
    }
    if h.functions.is_empty() {
        return Err("no function declared".into());
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_shapes_cbindgen_emits() {
        let h = parse(
            "/* c */\n#ifndef G\n#define G\n#include <stdint.h>\n\
             typedef enum { A = 0, /* x; */ B = -1, } st_t;\n\
             typedef struct { bool b; int32_t i; } s_t;\n\
             typedef uint64_t h_t;\n\
             typedef void (*cb_t)(const s_t *e, void *u);\n\
             #ifdef __cplusplus\nextern \"C\" {\n#endif // __cplusplus\n\
             const char *f0(void);\n\
             st_t f1(h_t h,\n  const char *s,\n  size_t *len);\n\
             #ifdef __cplusplus\n}  // extern \"C\"\n#endif\n#endif\n",
        )
        .unwrap();
        assert_eq!(h.functions.len(), 2);
        assert_eq!(h.functions[0].ret, "const char *");
        assert!(h.functions[0].params.is_empty());
        let f1 = &h.functions[1];
        assert_eq!((f1.name.as_str(), f1.ret.as_str()), ("f1", "st_t"));
        assert_eq!(f1.params[1], Param { ty: "const char *".into(), name: "s".into() });
        assert_eq!(f1.params[2].ty, "size_t *");
        assert_eq!(h.typedefs["cb_t"], TypeDef::FnPtr);
        assert_eq!(h.typedefs["h_t"], TypeDef::Alias("uint64_t".into()));
        assert!(parse("int f(int (*cb)(void));").is_err());
        assert!(parse("int f();").is_err());
        assert!(parse("int x;").is_err());
    }
}
