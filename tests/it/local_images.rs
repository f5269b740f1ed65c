//! An image file in the issue folder (`src = "cot.jpg"`): `check` judges it, `compose` writes
//! it resized and without metadata under a content-hashed name, `send` stores it with the
//! campaign and `serve` answers it. The images are made by each test in a copy of the
//! `local-image` fixture.

use std::io::Cursor;
use std::path::Path;

use image::codecs::jpeg::{JpegDecoder, JpegEncoder};
use image::{ImageDecoder, ImageEncoder, RgbImage};
use lscp_mail::content::{
    ImageSrc, Issue, Loaded, LocalImage, Rule, SectionBody, Severity, TopicCatalog, load_issue,
};
use lscp_mail::render::images::publish_one;
use lscp_mail::send::campaign;
use lscp_mail::store::Store;
use mail_parser::MessageParser;
use sqlx::PgPool;

use crate::common::sending::{fast_options, send_with};
use crate::common::smtp_sink::SmtpSink;
use crate::common::store::add;
use crate::common::web::Site;

/// A place name hidden in the test photo's EXIF: it must never reach a reader.
const SECRET: &[u8] = b"Secret refuge, Leeds";

/// A copy of the fixture with `cot` written as the image file `name`.
fn issue_with(name: &str, cot: &[u8]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("temp dir");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/local-image");
    for f in ["issue.toml", "01-photo.toml"] {
        std::fs::copy(fixture.join(f), tmp.path().join(f)).expect("copy fixture");
    }
    if name != "cot.jpg" {
        let section = tmp.path().join("01-photo.toml");
        let text = std::fs::read_to_string(&section).expect("read");
        std::fs::write(&section, text.replace("cot.jpg", name)).expect("write");
    }
    if !cot.is_empty() {
        std::fs::write(tmp.path().join(name), cot).expect("write image");
    }
    tmp
}

fn load(dir: &Path) -> Loaded {
    load_issue(dir, &TopicCatalog::builtin())
}

/// A gradient, so resizing has something to do.
fn pixels(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
    })
}

/// A TIFF block as cameras write it into EXIF: a GPS position (53°48'N) and, as the image
/// description, [`SECRET`].
fn exif_with_gps() -> Vec<u8> {
    let mut t: Vec<u8> = b"II\x2a\x00".to_vec();
    t.extend(8u32.to_le_bytes()); // IFD0 at 8
    let entry = |t: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: u32| {
        t.extend(tag.to_le_bytes());
        t.extend(kind.to_le_bytes());
        t.extend(count.to_le_bytes());
        t.extend(value.to_le_bytes());
    };
    // IFD0 (8..38): ImageDescription, GPS IFD pointer; then the GPS IFD (38..68), then data.
    let gps_ifd = 8 + 2 + 2 * 12 + 4;
    let gps_data = gps_ifd + 2 + 2 * 12 + 4;
    let description = gps_data + 24;
    t.extend(2u16.to_le_bytes());
    entry(&mut t, 0x010e, 2, SECRET.len() as u32 + 1, description);
    entry(&mut t, 0x8825, 4, 1, gps_ifd);
    t.extend(0u32.to_le_bytes());
    t.extend(2u16.to_le_bytes());
    entry(&mut t, 0x0001, 2, 2, u32::from_le_bytes(*b"N\0\0\0"));
    entry(&mut t, 0x0002, 5, 3, gps_data);
    t.extend(0u32.to_le_bytes());
    for (n, d) in [(53u32, 1u32), (48, 1), (0, 1)] {
        t.extend(n.to_le_bytes());
        t.extend(d.to_le_bytes());
    }
    t.extend(SECRET);
    t.push(0);
    t
}

/// A JPEG photo with EXIF holding a GPS position, as a phone takes it.
fn jpeg_with_gps(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = JpegEncoder::new_with_quality(&mut out, 90);
    encoder.set_exif_metadata(exif_with_gps()).expect("EXIF");
    let img = pixels(width, height);
    encoder
        .write_image(img.as_raw(), width, height, image::ExtendedColorType::Rgb8)
        .expect("encode");
    out
}

fn png(width: u32, height: u32, noise: bool) -> Vec<u8> {
    let mut seed: u32 = 0x2545_f491;
    let img = RgbImage::from_fn(width, height, |x, y| {
        if noise {
            // Incompressible pixels make a big file from a modest size.
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let b = seed.to_le_bytes();
            image::Rgb([b[1], b[2], b[3]])
        } else {
            image::Rgb([x as u8, y as u8, 0])
        }
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("encode");
    out.into_inner()
}

fn has_exif(jpeg: &[u8]) -> bool {
    JpegDecoder::new(Cursor::new(jpeg))
        .expect("a JPEG")
        .exif_metadata()
        .expect("reads")
        .is_some()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn local_image(issue: &Issue) -> &LocalImage {
    match &issue.sections[0].body {
        SectionBody::Article(a) => match &a.image.as_ref().expect("an image").src {
            ImageSrc::Local(l) => l,
            ImageSrc::Remote(l) => panic!("a local image, not {}", l.as_str()),
        },
        other => panic!("an article, not {}", other.kind()),
    }
}

/// The diagnostics of `rule`, each at the fixture's `src` line and field.
fn only(loaded: &Loaded, rule: Rule, severity: Severity) -> String {
    let found: Vec<_> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.rule == rule)
        .collect();
    assert_eq!(found.len(), 1, "one {rule:?} in {:#?}", loaded.diagnostics);
    let d = found[0];
    assert_eq!(d.severity, severity, "{d}");
    assert_eq!(
        d.file.file_name().and_then(|f| f.to_str()),
        Some("01-photo.toml")
    );
    assert_eq!(d.position.map(|p| p.0), Some(7), "{d}");
    assert_eq!(d.field.as_deref(), Some("image.src"), "{d}");
    d.message.clone()
}

#[test]
fn a_local_jpeg_loads_with_its_dimensions_and_no_diagnostic() {
    let tmp = issue_with("cot.jpg", &jpeg_with_gps(1200, 800));
    let loaded = load(tmp.path());
    assert_eq!(loaded.diagnostics, vec![]);
    let issue = loaded.issue.expect("loads");
    let img = local_image(&issue);
    assert_eq!((img.width, img.height), (1200, 800));
    assert_eq!(img.target_width, 600, "twice the display width of 300");
    assert!(
        img.published_name.starts_with("cot-") && img.published_name.ends_with(".jpg"),
        "{}",
        img.published_name
    );
}

#[test]
fn a_missing_local_image_is_an_error_at_its_file_line_and_field() {
    let tmp = issue_with("cot.jpg", b"");
    let loaded = load(tmp.path());
    let message = only(&loaded, Rule::ImageFile, Severity::Error);
    assert!(message.contains("cot.jpg"), "{message}");
    assert!(loaded.issue.is_none(), "refused");
}

#[test]
fn a_file_that_is_not_png_jpeg_or_gif_is_an_error() {
    let tmp = issue_with("cot.jpg", b"a text file, renamed");
    let loaded = load(tmp.path());
    let message = only(&loaded, Rule::ImageFile, Severity::Error);
    assert!(message.contains("PNG, JPEG or GIF"), "{message}");
    assert!(loaded.issue.is_none());

    // An image of another kind: a BMP, known by its signature.
    let tmp = issue_with("cot.bmp", b"BM\x3a\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0");
    let loaded = load(tmp.path());
    let message = only(&loaded, Rule::ImageFile, Severity::Error);
    assert!(message.contains("Bmp"), "{message}");
}

#[test]
fn an_image_outside_the_issue_folder_is_an_error() {
    for src in ["../cot.jpg", "/etc/passwd"] {
        let tmp = issue_with(src, b"");
        let loaded = load(tmp.path());
        let message = only(&loaded, Rule::ImageFile, Severity::Error);
        assert!(
            message.contains("not a file in the issue folder"),
            "{message}"
        );
    }
}

#[test]
fn an_image_narrower_than_its_display_width_is_a_warning() {
    let tmp = issue_with("cot.png", &png(200, 100, false));
    let loaded = load(tmp.path());
    let message = only(&loaded, Rule::ImageResolution, Severity::Warning);
    assert!(message.contains("200 px wide"), "{message}");
    assert!(message.contains("300 px"), "{message}");
    assert!(
        loaded.issue.is_some(),
        "a warning does not refuse the issue"
    );
}

#[test]
fn an_image_over_1_mb_is_a_warning() {
    let big = png(700, 700, true);
    assert!(big.len() > 1_000_000, "{} bytes", big.len());
    let tmp = issue_with("cot.png", &big);
    let loaded = load(tmp.path());
    let message = only(&loaded, Rule::ImageSize, Severity::Warning);
    assert!(message.contains("MB"), "{message}");
    assert!(loaded.issue.is_some());
}

#[test]
fn compose_writes_the_image_at_twice_its_display_width_without_exif_beside_the_email() {
    let photo = jpeg_with_gps(1200, 800);
    assert!(
        has_exif(&photo) && contains(&photo, SECRET),
        "the test photo has GPS EXIF"
    );
    let tmp = issue_with("cot.jpg", &photo);
    let out = tempfile::tempdir().expect("temp dir");
    let output = crate::common::lscp_mail(&["compose"])
        .args([tmp.path().to_str().expect("utf-8"), "--out"])
        .arg(out.path())
        .output()
        .expect("runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("and 1 image"));

    let name = local_image(&load(tmp.path()).issue.expect("loads"))
        .published_name
        .clone();
    let html = std::fs::read_to_string(out.path().join("index.html")).expect("html");
    assert!(
        html.contains(&format!("src=\"{name}\"")),
        "the email points at the file beside it: {name}"
    );
    let written = std::fs::read(out.path().join(&name)).expect("the hashed file is written");
    let img = image::load_from_memory(&written).expect("decodes");
    assert_eq!((img.width(), img.height()), (600, 400));
    assert!(!has_exif(&written), "no EXIF block");
    assert!(!contains(&written, b"Exif\0\0"), "no APP1 EXIF segment");
    assert!(!contains(&written, SECRET), "nothing of the EXIF");
}

#[test]
fn a_small_original_is_never_enlarged_and_a_changed_one_gets_a_new_name() {
    let tmp = issue_with("cot.png", &png(400, 200, false));
    let issue = load(tmp.path()).issue.expect("loads");
    let first = local_image(&issue).clone();
    let published = publish_one(&first).expect("published");
    let img = image::load_from_memory(&published.bytes).expect("decodes");
    assert_eq!(
        (img.width(), img.height()),
        (400, 200),
        "not upscaled to 600"
    );
    assert_eq!(published.content_type, "image/png");

    std::fs::write(tmp.path().join("cot.png"), png(500, 200, false)).expect("write");
    let issue = load(tmp.path()).issue.expect("loads");
    assert_ne!(local_image(&issue).published_name, first.published_name);
}

#[sqlx::test]
async fn a_sent_image_is_linked_at_the_site_and_serve_answers_it_for_ever(pool: PgPool) {
    let tmp = issue_with("cot.jpg", &jpeg_with_gps(1200, 800));
    let issue = load(tmp.path()).issue.expect("loads");
    let name = local_image(&issue).published_name.clone();
    let store = Store::from_pool(pool.clone());
    add(&store, "reader@example.org", "events").await;
    let sink = SmtpSink::start(&[]);

    send_with(&store, &issue, sink.port, &fast_options()).await;

    let raw = sink.messages().pop().expect("one message");
    let m = MessageParser::default().parse(&raw).expect("parses");
    let html = m.body_html(0).expect("an HTML part");
    assert!(
        html.contains(&format!(
            "src=\"https://news.leedsscp.org.uk/issues/2026-02/{name}\""
        )),
        "the <img> points at the site"
    );
    let site = Site::start(pool).await;
    let response = reqwest::get(site.url(&format!("/issues/2026-02/{name}")))
        .await
        .expect("answers");
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let header = |h: &str| {
        response
            .headers()
            .get(h)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    assert_eq!(header("content-type").as_deref(), Some("image/jpeg"));
    let cache = header("cache-control").unwrap_or_default();
    assert!(
        cache.contains("immutable") && cache.contains("max-age=31536000"),
        "{cache}"
    );
    let served = response.bytes().await.expect("body");
    let published = publish_one(local_image(&issue)).expect("published");
    assert_eq!(
        served.as_ref(),
        published.bytes.as_slice(),
        "the same file as compose"
    );
    assert!(!contains(&served, SECRET));

    let missing = reqwest::get(site.url("/issues/2026-02/nothing-0000.jpg"))
        .await
        .expect("answers");
    assert_eq!(missing.status(), reqwest::StatusCode::NOT_FOUND);
}

#[test]
fn sending_local_images_without_an_https_site_is_refused_before_anything() {
    let tmp = issue_with("cot.jpg", &jpeg_with_gps(1200, 800));
    let issue = load(tmp.path()).issue.expect("loads");
    let mut config = lscp_mail::config::Config::default();
    config.site.base_url = "http://news.example.org".parse().expect("an http URL");
    assert!(matches!(
        campaign::check_image_site(&issue, &config),
        Err(campaign::SendError::ImagesNeedHttps(_))
    ));

    // As a user runs it: no database and no mail server are even needed to be told.
    let output = crate::common::lscp_mail(&["send", tmp.path().to_str().expect("utf-8")])
        .env("LSCP_MAIL_SITE__BASE_URL", "http://news.example.org")
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:9/none")
        .env("SMTP_URL", "smtp://127.0.0.1:9")
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is not an https address"), "{stderr}");
    assert!(stderr.contains("nothing was sent"), "{stderr}");
}

#[tokio::test]
async fn preview_shows_the_image_at_the_address_the_email_gives_it() {
    let tmp = issue_with("cot.jpg", &jpeg_with_gps(1200, 800));
    let name = local_image(&load(tmp.path()).issue.expect("loads"))
        .published_name
        .clone();
    let running = crate::common::preview::Running::start(tmp.path(), None).await;

    let (status, html) = running.get("/email").await;
    assert_eq!(status, 200);
    assert!(
        html.contains(&format!("src=\"{name}\"")),
        "relative to /email"
    );
    let response = reqwest::get(format!("{}/{name}", running.base))
        .await
        .expect("answers");
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("image/jpeg")
    );
    let served = response.bytes().await.expect("body");
    let img = image::load_from_memory(&served).expect("decodes");
    assert_eq!(img.width(), 600);
    assert!(!has_exif(&served));
    assert_eq!(running.get("/other-0000.jpg").await.0, 404);
    running.stop().await;
}
