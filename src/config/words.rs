//! The vocabulary `validate` checks words against: ISO 4217 currency codes, and "did you
//! mean" suggestions by edit distance for keys, variants, time zones, currencies and
//! environment variable names.

/// ISO 4217 alphabetic codes: the active list (2025), plus the codes withdrawn since 2023
/// (HRK, SLL, CUC, ANG, ZWL) that older spend and cost records still carry. `XTS` (testing)
/// and `XXX` (no currency) are left out: money is never reported in them.
const ISO_4217: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD",
    "CAD", "CDF", "CHE", "CHF", "CHW", "CLF", "CLP", "CNY", "COP", "COU", "CRC", "CUC", "CUP",
    "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP",
    "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HRK", "HTG", "HUF", "IDR",
    "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW",
    "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA",
    "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MXV", "MYR", "MZN", "NAD",
    "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG",
    "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE",
    "SLL", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP",
    "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "USN", "UYI", "UYU", "UYW", "UZS", "VED",
    "VES", "VND", "VUV", "WST", "XAF", "XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XCD", "XCG",
    "XDR", "XOF", "XPD", "XPF", "XPT", "XSU", "XUA", "YER", "ZAR", "ZMW", "ZWG", "ZWL",
];

/// Is `code` an ISO 4217 currency code (upper case, as the tables store it)?
pub fn is_iso_currency(code: &str) -> bool {
    ISO_4217.binary_search(&code).is_ok()
}

/// `Err` with a message (and a suggestion) unless `code` is an ISO 4217 code.
pub fn check_currency(code: &str) -> Result<(), String> {
    if is_iso_currency(code) {
        return Ok(());
    }
    let hint = did_you_mean(code, ISO_4217.iter().copied())
        .map(|c| format!("; did you mean `{c}`?"))
        .unwrap_or_default();
    Err(format!(
        "`{code}` is not an ISO 4217 currency code like EUR or USD{hint}"
    ))
}

/// The candidate closest to `word` (ignoring case), if it is close enough to be a typo: at
/// most a third of the word's length in edits (at least one; a word of one or two letters
/// only matches in another case).
pub(super) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = word.to_lowercase();
    let length = word.chars().count();
    let limit = if length < 3 { 0 } else { (length / 3).max(1) };
    candidates
        .into_iter()
        .filter(|c| *c != word)
        .map(|c| (strsim::damerau_levenshtein(&lower, &c.to_lowercase()), c))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

/// A time zone for a misspelt or partial name: the closest IANA name, else the one whose
/// last part is the word (`Berlin` → `Europe/Berlin`).
pub(super) fn suggest_time_zone(word: &str) -> Option<&'static str> {
    let names = || chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name());
    did_you_mean(word, names()).or_else(|| {
        names().find(|name| {
            name.rsplit('/')
                .next()
                .is_some_and(|city| city.eq_ignore_ascii_case(&word.replace(' ', "_")))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currencies_are_checked_against_the_iso_list() {
        assert!(
            ISO_4217.windows(2).all(|w| w[0] < w[1]),
            "sorted for binary search"
        );
        for code in ["EUR", "USD", "GBP", "JPY", "CHF", "XCG"] {
            assert!(check_currency(code).is_ok(), "{code}");
        }
        assert!(check_currency("ZZZ").is_err());
        let e = check_currency("euro").unwrap_err();
        assert!(e.contains("did you mean `EUR`"), "{e}");
        assert!(check_currency("eur").unwrap_err().contains("`EUR`"));
    }

    #[test]
    fn suggestions_are_close_or_none() {
        let keys = ["page_size", "base_url", "token"];
        assert_eq!(did_you_mean("pagesize", keys), Some("page_size"));
        assert_eq!(did_you_mean("tokn", keys), Some("token"));
        assert_eq!(did_you_mean("colour", keys), None);
        assert_eq!(did_you_mean("x", ["a", "b"]), None);
        assert_eq!(suggest_time_zone("Europe/Berln"), Some("Europe/Berlin"));
        assert_eq!(suggest_time_zone("berlin"), Some("Europe/Berlin"));
        assert_eq!(suggest_time_zone("Mars/Olympus"), None);
    }
}
