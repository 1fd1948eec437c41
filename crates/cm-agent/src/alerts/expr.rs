//! Conditions that combine rules: `scratch-full and not (backup-running or maintenance)`.
//!
//! A condition names other rules; a name is true while that rule has an
//! alert firing or flapping. `not` binds tighter than `and`, `and` tighter
//! than `or`, as in most languages.

/// A parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Rule(String),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

impl Expr {
    /// Parses a condition, or says what is wrong and where.
    pub fn parse(text: &str) -> Result<Expr, String> {
        let tokens = tokenize(text)?;
        if tokens.is_empty() {
            return Err("the condition is empty".into());
        }
        let mut p = Parser { tokens, at: 0 };
        let e = p.or()?;
        match p.tokens.get(p.at) {
            None => Ok(e),
            Some(t) => Err(format!("unexpected {} after a whole condition", t.describe())),
        }
    }

    /// Every rule name the condition reads.
    pub fn names(&self) -> Vec<&str> {
        match self {
            Expr::Rule(n) => vec![n.as_str()],
            Expr::Not(e) => e.names(),
            Expr::And(a, b) | Expr::Or(a, b) => {
                let mut v = a.names();
                v.extend(b.names());
                v
            }
        }
    }

    /// The condition's truth, given each rule's.
    pub fn eval(&self, truth: &impl Fn(&str) -> bool) -> bool {
        match self {
            Expr::Rule(n) => truth(n),
            Expr::Not(e) => !e.eval(truth),
            Expr::And(a, b) => a.eval(truth) && b.eval(truth),
            Expr::Or(a, b) => a.eval(truth) || b.eval(truth),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Name(String),
    And,
    Or,
    Not,
    Open,
    Close,
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::Name(n) => format!("rule name {n:?}"),
            Token::And => "`and`".into(),
            Token::Or => "`or`".into(),
            Token::Not => "`not`".into(),
            Token::Open => "`(`".into(),
            Token::Close => "`)`".into(),
        }
    }
}

/// Characters a rule name may hold.
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '/')
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '(' {
            out.push(Token::Open);
            chars.next();
        } else if c == ')' {
            out.push(Token::Close);
            chars.next();
        } else if is_name_char(c) {
            let mut word = String::new();
            while let Some(&(_, c)) = chars.peek().filter(|(_, c)| is_name_char(*c)) {
                word.push(c);
                chars.next();
            }
            out.push(match word.as_str() {
                "and" => Token::And,
                "or" => Token::Or,
                "not" => Token::Not,
                _ => Token::Name(word),
            });
        } else {
            return Err(format!("unexpected {c:?} at character {}", i + 1));
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.peek() == Some(&Token::Or) {
            self.at += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.not()?;
        while self.peek() == Some(&Token::And) {
            self.at += 1;
            left = Expr::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, String> {
        if self.peek() == Some(&Token::Not) {
            self.at += 1;
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<Expr, String> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        match token {
            Some(Token::Name(n)) => Ok(Expr::Rule(n)),
            Some(Token::Open) => {
                let e = self.or()?;
                match self.peek() {
                    Some(Token::Close) => {
                        self.at += 1;
                        Ok(e)
                    }
                    Some(t) => Err(format!("expected `)`, found {}", t.describe())),
                    None => Err("a `(` is never closed".into()),
                }
            }
            Some(t) => Err(format!("expected a rule name, `not` or `(`, found {}", t.describe())),
            None => Err("the condition ends where a rule name was expected".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn truth<'a>(on: &'a [&'a str]) -> impl Fn(&str) -> bool + 'a {
        move |n| on.contains(&n)
    }

    #[test]
    fn not_binds_tighter_than_and_and_and_tighter_than_or() {
        let e = Expr::parse("a or b and not c").unwrap();
        assert!(e.eval(&truth(&["a"])));
        assert!(e.eval(&truth(&["b"])));
        assert!(!e.eval(&truth(&["b", "c"])));
        let grouped = Expr::parse("(a or b) and not c").unwrap();
        assert!(!grouped.eval(&truth(&["a", "c"])));
        assert!(grouped.eval(&truth(&["a"])));
        assert_eq!(grouped.names(), ["a", "b", "c"]);
    }

    #[test]
    fn rule_names_keep_their_dashes_and_dots() {
        let e = Expr::parse("scratch-full and not backup.running").unwrap();
        assert_eq!(e.names(), ["scratch-full", "backup.running"]);
    }

    #[test]
    fn malformed_conditions_say_what_is_wrong() {
        let err = |t: &str| Expr::parse(t).unwrap_err();
        assert_eq!(err(""), "the condition is empty");
        assert_eq!(err("a and"), "the condition ends where a rule name was expected");
        assert_eq!(err("(a or b"), "a `(` is never closed");
        assert_eq!(err("a b"), "unexpected rule name \"b\" after a whole condition");
        assert_eq!(err("a & b"), "unexpected '&' at character 3");
        assert_eq!(err("and a"), "expected a rule name, `not` or `(`, found `and`");
    }
}
