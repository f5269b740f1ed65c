//! An image: an address, or a file in the issue folder checked (format, size, dimensions) and
//! given the name it is published under.

use std::fs;
use std::ops::Range;
use std::path::Path;

use image::ImageDecoder;
use image::metadata::Orientation;
use toml::Spanned;

use super::super::diagnostic::Rule;
use super::super::issue::*;
use super::super::model::*;
use super::file::File;
use super::{CONTENT_WIDTH, Cx};

/// Above this a local image is a warning: slow for the editor and wasteful to store.
const IMAGE_BYTES_MAX: usize = 1_000_000;

/// `cot-1f0c…9a.jpg`: the file's stem for people, and a hash of its bytes and the width it is
/// resized to, so the name changes whenever what is served would.
fn published_name(written: &Path, bytes: &[u8], target: u32, format: LocalImageFormat) -> String {
    use sha2::{Digest, Sha256};
    let stem: String = written
        .file_stem()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let mut hash = Sha256::new();
    hash.update(bytes);
    hash.update(target.to_le_bytes());
    let hex = hex::encode(&hash.finalize()[..8]);
    let stem = match stem.trim_matches('-') {
        "" => "image",
        s => s,
    };
    format!("{stem}-{hex}.{}", format.extension())
}

impl Cx<'_> {
    pub(super) fn image(&mut self, file: &File, img: Spanned<ImageToml>) -> Option<Image> {
        let span = img.span();
        let img = img.into_inner();
        let display_width = img.width.unwrap_or(CONTENT_WIDTH).min(CONTENT_WIDTH);
        let src = self.image_src(file, &img.src, display_width, "image");
        let link = match &img.link {
            Some(l) => Some(self.link(file, l, "image.link")?),
            None => None,
        };
        let alt = self.alt_text(file, img.alt.as_ref(), span.clone(), "image");
        if let Some(width) = img.width.filter(|&w| w > CONTENT_WIDTH) {
            self.push(
                file.warning(
                    Rule::ImageTooWide,
                    span,
                    format!("the image is set {width} px wide, wider than the email's {CONTENT_WIDTH} px"),
                )
                .field("image.width")
                .hint(format!("it is shown {CONTENT_WIDTH} px wide; set width = {CONTENT_WIDTH} or less")),
            );
        }
        let caption = self
            .markdown(file, img.caption, "image.caption", 2)
            .filter(|c| !c.is_blank());
        Some(Image {
            src: src?,
            alt: alt?,
            display_width,
            link,
            caption,
            placement: img.placement,
        })
    }

    /// An image's alt text (of the image at `at`, such as `image`), required: an email with
    /// images blocked, or read aloud, has only this.
    pub(super) fn alt_text(
        &mut self,
        file: &File,
        alt: Option<&Spanned<String>>,
        image: Range<usize>,
        at: &str,
    ) -> Option<String> {
        let text = alt
            .map(|a| a.get_ref().trim().to_string())
            .filter(|a| !a.is_empty());
        if text.is_none() {
            let span = alt.map_or(image, |a| a.span());
            self.push(
                file.error(Rule::MissingAltText, span, "the image has no alt text")
                    .field(format!("{at}.alt"))
                    .hint("describe what the image shows for readers who cannot see it, e.g. alt = \"Poster: the safest cot is a clear cot\""),
            );
        }
        text
    }

    /// An address, or (when `src` has no scheme) a file in the issue folder; `at` names the
    /// image in messages (`image`, `resources[2].photo`).
    pub(super) fn image_src(
        &mut self,
        file: &File,
        src: &Spanned<String>,
        display_width: u32,
        at: &str,
    ) -> Option<ImageSrc> {
        let field = format!("{at}.src");
        let written = src.get_ref().trim();
        if url::Url::parse(written) != Err(url::ParseError::RelativeUrlWithoutBase) {
            return self.link(file, src, &field).map(ImageSrc::Remote);
        }
        let fail = |message: String, hint: &str| {
            file.error(Rule::ImageFile, src.span(), message)
                .field(field.clone())
                .hint(hint)
        };
        let relative = Path::new(written);
        if written.is_empty()
            || !relative
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)))
        {
            self.push(fail(
                format!("`{written}` is not a file in the issue folder"),
                "name a file beside issue.toml, such as src = \"cot.jpg\", or give an https:// address",
            ));
            return None;
        }
        let dir = file.src.path.parent().unwrap_or(Path::new("."));
        let path = dir.join(relative);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                self.push(fail(
                    format!("cannot read the image {}: {e}", path.display()),
                    "put the file in the issue folder, or correct its name (names are case-sensitive)",
                ));
                return None;
            }
        };
        let reader =
            match image::ImageReader::new(std::io::Cursor::new(&bytes)).with_guessed_format() {
                Ok(r) => r,
                Err(e) => {
                    self.push(fail(
                        format!("cannot read the image `{written}`: {e}"),
                        "save it again as PNG, JPEG or GIF",
                    ));
                    return None;
                }
            };
        let format = match reader.format() {
            Some(image::ImageFormat::Png) => LocalImageFormat::Png,
            Some(image::ImageFormat::Jpeg) => LocalImageFormat::Jpeg,
            Some(image::ImageFormat::Gif) => LocalImageFormat::Gif,
            other => {
                let what = other.map_or("not an image".to_string(), |f| format!("a {f:?} image"));
                self.push(fail(
                    format!("`{written}` is {what}; an email image must be PNG, JPEG or GIF"),
                    "save it as JPEG (photos) or PNG (drawings, text)",
                ));
                return None;
            }
        };
        let dimensions = reader.into_decoder().and_then(|mut d| {
            let (w, h) = d.dimensions();
            // As compose will turn it: a portrait photo stored on its side is narrow.
            Ok(match d.orientation()? {
                Orientation::Rotate90
                | Orientation::Rotate270
                | Orientation::Rotate90FlipH
                | Orientation::Rotate270FlipH => (h, w),
                _ => (w, h),
            })
        });
        let (width, height) = match dimensions {
            Ok(d) => d,
            Err(e) => {
                self.push(fail(
                    format!("`{written}` does not decode as {}: {e}", format.extension()),
                    "save it again from an image editor",
                ));
                return None;
            }
        };
        if bytes.len() > IMAGE_BYTES_MAX {
            self.push(
                file.warning(
                    Rule::ImageSize,
                    src.span(),
                    format!(
                        "`{written}` is {:.1} MB ({width}×{height} px); over 1 MB is slow to check, compose and send",
                        bytes.len() as f64 / 1_000_000.0
                    ),
                )
                .field(field.as_str())
                .hint(format!("compose resizes it to {} px wide; save a smaller original", 2 * display_width)),
            );
        }
        if width < display_width {
            self.push(
                file.warning(
                    Rule::ImageResolution,
                    src.span(),
                    format!(
                        "`{written}` is {width} px wide, narrower than its display width of {display_width} px: it will look blurred"
                    ),
                )
                .field(field.as_str())
                .hint(format!("use a wider original, or set `width = {width}` in [image]")),
            );
        }
        // Twice the display width is crisp on high-density screens; a smaller original is
        // never enlarged.
        let target = width.min(2 * display_width);
        let published_name = published_name(relative, &bytes, target, format);
        Some(ImageSrc::Local(LocalImage {
            path,
            format,
            width,
            height,
            target_width: target,
            published_name,
        }))
    }
}
