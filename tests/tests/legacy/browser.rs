//! A scripted visitor: curl with a cookie jar, following nothing by itself, so each test sees
//! every status and `Location` the application sends.

use std::path::PathBuf;
use std::process::Command;

use harness::Paddock;

#[derive(Debug)]
pub(crate) struct Page {
    pub status: u16,
    pub location: String,
    pub body: String,
}

pub(crate) struct Browser {
    base: String,
    jar: PathBuf,
}

impl Browser {
    /// A visitor of `paddock`'s HTTP listener with an empty cookie jar in `dir`.
    pub(crate) fn new(paddock: &Paddock, dir: &std::path::Path, name: &str) -> Self {
        Self {
            base: paddock.url(""),
            jar: dir.join(format!("{name}.cookies")),
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) fn get(&self, path: &str) -> Page {
        self.run(path, &[])
    }

    /// POSTs `form` (`name=value` pairs, URL-encoded by curl).
    pub(crate) fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        let fields: Vec<String> = form
            .iter()
            .flat_map(|(k, v)| ["--data-urlencode".to_string(), format!("{k}={v}")])
            .collect();
        let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
        self.run(path, &fields)
    }

    /// POSTs `multipart/form-data`: `fields` as text (taken literally, never as `@file`), and
    /// `files` as (field, file, content type).
    pub(crate) fn post_multipart(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        files: &[(&str, &std::path::Path, &str)],
    ) -> Page {
        let mut args: Vec<String> = fields
            .iter()
            .flat_map(|(k, v)| ["--form-string".to_string(), format!("{k}={v}")])
            .collect();
        for (name, file, content_type) in files {
            args.push("-F".to_string());
            args.push(format!("{name}=@{};type={content_type}", file.display()));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(path, &args)
    }

    /// POSTs an XML-RPC call.
    pub(crate) fn xmlrpc(&self, body: &str) -> Page {
        self.run(
            "/xmlrpc.php",
            &["-H", "Content-Type: text/xml", "--data-binary", body],
        )
    }

    fn run(&self, path: &str, args: &[&str]) -> Page {
        let marker = "\n--paddock-test--";
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "60", "-c"])
            .arg(&self.jar)
            .arg("-b")
            .arg(&self.jar)
            .args(args)
            .args(["-w", &format!("{marker}%{{http_code}} %{{redirect_url}}")])
            .arg(self.url(path))
            .output()
            .expect("run curl (apt-get install curl)");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, tail) = text.rsplit_once(marker).unwrap_or_else(|| {
            panic!(
                "{path}: curl failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let (status, location) = tail.split_once(' ').unwrap_or((tail, ""));
        Page {
            status: status.parse().unwrap_or(0),
            location: location.trim().to_string(),
            body: body.to_string(),
        }
    }
}

/// The value of the first `name="NAME" value="…"` form field in a page.
pub(crate) fn form_value(page: &str, name: &str) -> Option<String> {
    let needle = format!("name=\"{name}\" value=\"");
    let start = page.find(&needle)? + needle.len();
    Some(page[start..].split('"').next()?.to_string())
}

/// The text between the first `before` and the next `after`.
pub(crate) fn between<'a>(text: &'a str, before: &str, after: &str) -> Option<&'a str> {
    let start = text.find(before)? + before.len();
    let len = text[start..].find(after)?;
    Some(&text[start..start + len])
}
