//! The driver page: how a browser under test is sent through a client scenario's URLs.

use misdirect_core::policy::Answer;

/// Where a browser under test is sent first: a page on the origin that fetches the URLs given in
/// its query (`?u=<url>&u=<url>…`), one after another. Browsers cannot be told to fetch a list of
/// URLs in order, and a page of another origin may not reach loopback (Private Network Access).
/// With `sync=1` in the query the page fetches them with synchronous requests while it loads, for
/// a browser that can only be told to load a page and stop (Firefox's `--screenshot` waits for
/// the load event, not for a script's promises). Every request carries credentials, as a page's
/// own subresources do: browsers keep requests without them (privacy mode, anonymous) on
/// connections of their own, which would hide whether they coalesce.
pub const DRIVER_PATH: &str = "/misdirect/driver";

pub(super) fn driver_page(path: &str) -> Option<Answer> {
    let query = path.strip_prefix(DRIVER_PATH)?.strip_prefix('?')?;
    let urls: Vec<String> = query
        .split('&')
        .filter_map(|pair| pair.strip_prefix("u="))
        .map(percent_decode)
        .filter(|url| url.starts_with("https://") && !url.contains(['\'', '"', '<', '>', '\\']))
        .collect();
    let synchronous = query.split('&').any(|pair| pair == "sync=1");
    let script = if synchronous {
        // A request the page may not read (another origin, no CORS) still reaches the origin.
        let requests: String = urls
            .iter()
            .map(|url| {
                format!("try{{var x=new XMLHttpRequest();x.open('GET','{url}',false);x.withCredentials=true;x.send()}}catch(e){{}}")
            })
            .collect();
        format!("{requests}document.title='done'")
    } else {
        let fetches: String = urls
            .iter()
            .map(|url| {
                format!(
                    "try{{await fetch('{url}',{{mode:'no-cors',cache:'no-store'}})}}catch(e){{}}"
                )
            })
            .collect();
        format!("(async()=>{{{fetches}document.title='done'}})()")
    };
    Some(Answer {
        status: 200,
        tenant: None,
        body: format!("<!doctype html><title>misdirect</title><script>{script}</script>\n"),
        cache_control: Some("no-store"),
        close: false,
        content_type: "text/html",
    })
}

/// Decodes `%XX` escapes of a query value.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let decoded = (bytes[index] == b'%')
            .then(|| bytes.get(index + 1..index + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match decoded {
            Some(byte) => {
                out.push(byte);
                index += 3;
            }
            None => {
                out.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_driver_page_fetches_its_urls_in_order() {
        let page = driver_page("/misdirect/driver?u=https://a.test:1/fetch/0&u=https%3A//b.test:1/fetch/1&u=javascript:x")
            .unwrap();
        assert_eq!(page.content_type, "text/html");
        let first = page.body.find("https://a.test:1/fetch/0").unwrap();
        let second = page.body.find("https://b.test:1/fetch/1").unwrap();
        assert!(first < second);
        assert!(!page.body.contains("javascript:x"));
        assert!(driver_page("/fetch/0").is_none());
        let synchronous =
            driver_page("/misdirect/driver?u=https://a.test:1/fetch/0&sync=1").unwrap();
        assert!(
            synchronous
                .body
                .contains("open('GET','https://a.test:1/fetch/0',false)")
        );
        assert!(!synchronous.body.contains("async"));
    }
}
