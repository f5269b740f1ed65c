//! The brand: how the email looks and who it says it is from, its colours, and the warnings
//! about text whose colours contrast too little to read (WCAG AA).

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Config, HttpUrl};
use crate::content::{Diagnostic, Rule};

/// How the email looks and who it says it is from. Colours are `#rrggbb`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Brand {
    pub organisation: String,
    pub short_name: String,
    pub website: HttpUrl,
    /// An absolute URL of the logo image; without one the header shows the organisation name.
    pub logo_url: Option<String>,
    pub logo_alt: String,
    pub primary_colour: Colour,
    pub accent_colour: Colour,
    pub background_colour: Colour,
    pub text_colour: Colour,
    pub postal_address: String,
    pub contact_email: String,
    pub signup_heading: String,
    pub signup_intro: String,
    pub signup_closing: String,
    pub footer_reason: String,
}

impl Default for Brand {
    fn default() -> Self {
        Self {
            organisation: "Leeds Safeguarding Children Partnership".into(),
            short_name: "LSCP".into(),
            website: HttpUrl::builtin("https://www.leedsscp.org.uk"),
            logo_url: None,
            logo_alt: "Leeds Safeguarding Children Partnership".into(),
            primary_colour: Colour("#4b2e83".into()),
            accent_colour: Colour("#00757f".into()),
            background_colour: Colour("#f3f1f6".into()),
            text_colour: Colour("#1f1f1f".into()),
            postal_address: "LSCP Business Unit, Leeds City Council, Merrion House, 110 Merrion Centre, Leeds LS2 8BB".into(),
            contact_email: "lscp.info@leeds.gov.uk".into(),
            signup_heading: "Register for your copy of our newsletter delivered direct to your inbox".into(),
            signup_intro: "Sign up to receive email updates on:".into(),
            signup_closing: "Our monthly newsletter contains all the latest information that practitioners need to safeguard children and young people in Leeds. Registration is simple. Just add your email address.".into(),
            footer_reason: "You are receiving this because you signed up for the LSCP newsletter for practitioners who work with children and families in Leeds.".into(),
        }
    }
}

/// A CSS colour `#rgb` or `#rrggbb`: it goes into style attributes, so nothing else may.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Colour(String);

impl Colour {
    pub fn parse(s: &str) -> Result<Self, String> {
        let hex = s.strip_prefix('#').unwrap_or("");
        if (hex.len() == 3 || hex.len() == 6) && hex.chars().all(|c| c.is_ascii_hexdigit()) {
            Ok(Self(s.to_ascii_lowercase()))
        } else {
            Err(format!("`{s}` is not a colour like \"#4b2e83\""))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Red, green and blue, 0 to 255 (`#rgb` is `#rrggbb` with each digit doubled).
    fn rgb(&self) -> [u8; 3] {
        let hex = self.0.trim_start_matches('#');
        let digit = |i: usize| u8::from_str_radix(&hex[i..=i], 16).unwrap_or(0);
        let channel = |i: usize| match hex.len() {
            3 => digit(i) * 17,
            _ => digit(2 * i) * 16 + digit(2 * i + 1),
        };
        [channel(0), channel(1), channel(2)]
    }

    /// WCAG 2's relative luminance (https://www.w3.org/TR/WCAG21/#dfn-relative-luminance).
    fn luminance(&self) -> f64 {
        let [r, g, b] = self.rgb().map(|c| {
            let c = f64::from(c) / 255.0;
            if c <= 0.04045 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        });
        0.2126 * r + 0.7152 * g + 0.0722 * b
    }

    /// WCAG 2's contrast ratio with `other`, from 1 (none) to 21 (black on white).
    pub fn contrast_ratio(&self, other: &Colour) -> f64 {
        let (a, b) = (self.luminance(), other.luminance());
        (a.max(b) + 0.05) / (a.min(b) + 0.05)
    }
}

/// WCAG AA's least contrast for body text.
pub const MIN_TEXT_CONTRAST: f64 = 4.5;

/// A text colour and the background the built-in templates set it on, below WCAG AA.
#[derive(Debug, Clone, PartialEq)]
pub struct ContrastWarning {
    /// The configuration key of the text's colour, or `white` for the templates' own white.
    pub text: &'static str,
    pub background: &'static str,
    pub ratio: f64,
}

impl fmt::Display for ContrastWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = |key: &str| {
            if key == WHITE {
                "white (#ffffff)".to_string()
            } else {
                format!("`{key}`")
            }
        };
        write!(
            f,
            "text in {} on {} has a contrast of {:.2}:1, below WCAG AA's {MIN_TEXT_CONTRAST}:1; some readers will not be able to read it",
            name(self.text),
            name(self.background),
            self.ratio
        )
    }
}

const WHITE: &str = "white";

impl<'de> Deserialize<'de> for Colour {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Colour::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Colour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Config {
    /// Every pair of colours the built-in templates set text in, on its background, whose
    /// contrast is below WCAG AA: the reading text on white sections and on the footer, headings
    /// and links on white, the header's and buttons' white on the primary colour, and the
    /// topic labels' accent on white.
    pub fn contrast_warnings(&self) -> Vec<ContrastWarning> {
        let b = &self.brand;
        let white = Colour("#ffffff".into());
        let pairs = [
            ("brand.text_colour", &b.text_colour, WHITE, &white),
            (
                "brand.text_colour",
                &b.text_colour,
                "brand.background_colour",
                &b.background_colour,
            ),
            ("brand.primary_colour", &b.primary_colour, WHITE, &white),
            (WHITE, &white, "brand.primary_colour", &b.primary_colour),
            ("brand.accent_colour", &b.accent_colour, WHITE, &white),
        ];
        pairs
            .into_iter()
            .map(|(text, fg, background, bg)| ContrastWarning {
                text,
                background,
                ratio: fg.contrast_ratio(bg),
            })
            .filter(|w| w.ratio < MIN_TEXT_CONTRAST)
            .collect()
    }

    /// [`Self::contrast_warnings`] as `check` reports them: at the colour's line in the
    /// configuration file when it was set there.
    pub fn contrast_diagnostics(&self) -> Vec<Diagnostic> {
        let warnings = self.contrast_warnings();
        if warnings.is_empty() {
            return Vec::new();
        }
        let file = self
            .file
            .clone()
            .unwrap_or_else(|| PathBuf::from("(configuration)"));
        let text = self
            .file
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .unwrap_or_default();
        warnings
            .into_iter()
            .map(|w| {
                let key = if w.text == WHITE { w.background } else { w.text };
                let name = key.trim_start_matches("brand.");
                let line = text
                    .lines()
                    .position(|l| l.trim_start().starts_with(name))
                    .map(|i| (i + 1, 1));
                Diagnostic::warning(Rule::LowContrast, &file, w.to_string())
                    .at(line)
                    .field(key)
                    .hint("darken the text colour or lighten its background; WebAIM's contrast checker shows the ratio as you change them")
            })
            .collect()
    }
}
