//! A contact as a HubSpot CRM v3 record, written as JSON straight into the page: `id`, the
//! requested `properties` (by name), `createdAt`, `updatedAt`, `archived` and, for an archived
//! contact, `archivedAt` — in that order. The property keys are rendered once per request
//! and every value is written from the contact without a `String` of its own: the twin
//! serves from the cores of the client it is measuring, and a list page of 100 contacts is
//! 117 KB of JSON on the pull's critical path (one cursor after the other).

use crate::sandbox::contacts::{Contact, DEFAULT_PROPERTIES, HubspotProperty};
use crate::sandbox::property_value::{PropertyValue, write_json_string};

/// The property names a request asked for, in the order HubSpot's JSON lists them (by name),
/// each resolved once for the whole page, with its key already written (`"name":`).
pub(crate) struct Requested(Vec<(Vec<u8>, HubspotProperty)>);

impl Requested {
    /// `names` once each, by name; HubSpot's default set when none were asked for.
    pub(crate) fn new(mut names: Vec<String>) -> Self {
        if names.is_empty() {
            names = DEFAULT_PROPERTIES.iter().map(|&p| p.to_owned()).collect();
        }
        names.sort_unstable();
        names.dedup();
        Self(
            names
                .iter()
                .map(|name| {
                    let mut key = Vec::with_capacity(name.len() + 3);
                    write_json_string(&mut key, name);
                    key.push(b':');
                    (key, HubspotProperty::named(name))
                })
                .collect(),
        )
    }
}

/// Append `contact` as a record; `archived_at` (epoch ms) for a contact of the archived list.
pub(crate) fn write_record(
    out: &mut Vec<u8>,
    contact: &Contact,
    requested: &Requested,
    archived_at: Option<i64>,
) {
    out.extend_from_slice(b"{\"id\":");
    PropertyValue::Unsigned(contact.id).write_json(out);
    out.extend_from_slice(b",\"properties\":{");
    for (i, (key, property)) in requested.0.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(key);
        contact.hubspot_value(*property).write_json(out);
    }
    out.extend_from_slice(b"},\"createdAt\":");
    PropertyValue::time(Some(contact.created_ms)).write_json(out);
    out.extend_from_slice(b",\"updatedAt\":");
    PropertyValue::time(Some(contact.modified_ms)).write_json(out);
    match archived_at {
        None => out.extend_from_slice(b",\"archived\":false}"),
        Some(at) => {
            out.extend_from_slice(b",\"archived\":true,\"archivedAt\":");
            PropertyValue::time(Some(at)).write_json(out);
            out.push(b'}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::contacts::ContactModel;
    use crate::sandbox::encoding::format_iso_millis;

    #[test]
    fn a_record_writes_each_requested_property_and_a_valid_envelope_even_when_malformed() {
        // 2026-11-20T00:00:00Z; every 10th contact has a malformed `createdate`.
        let model = ContactModel::new(7, 50, 1_795_132_800_000, 10, vec![1]);
        let contact = model.contact(9);
        assert!(contact.malformed);
        let requested = Requested::new(
            [
                "lastname",
                "createdate",
                "nosuch",
                "hs_object_id",
                "createdate",
            ]
            .map(str::to_owned)
            .to_vec(),
        );
        let (id, last) = (contact.id, contact.last_name());
        let (created, modified) = (
            format_iso_millis(contact.created_ms),
            format_iso_millis(contact.modified_ms),
        );
        let mut out = Vec::new();
        write_record(&mut out, &contact, &requested, None);
        assert_eq!(
            String::from_utf8_lossy(&out),
            format!(
                r#"{{"id":"{id}","properties":{{"createdate":"not-a-date","hs_object_id":"{id}","lastname":"{last}","nosuch":null}},"createdAt":"{created}","updatedAt":"{modified}","archived":false}}"#
            ),
            "names sorted once each, the envelope in HubSpot's order"
        );

        out.clear();
        write_record(&mut out, &contact, &requested, Some(contact.modified_ms));
        let json: serde_json::Value = serde_json::from_slice(&out).unwrap_or_default();
        assert_eq!(json["archived"], true);
        assert_eq!(json["archivedAt"], modified);
        assert!(
            String::from_utf8_lossy(&out)
                .ends_with(&format!(r#""archived":true,"archivedAt":"{modified}"}}"#))
        );

        let defaults = Requested::new(Vec::new());
        assert_eq!(defaults.0.len(), DEFAULT_PROPERTIES.len());
        assert!(
            defaults
                .0
                .iter()
                .all(|(_, p)| *p != HubspotProperty::Unknown)
        );
    }

    #[test]
    fn every_served_property_of_many_contacts_reads_back_as_json_with_its_text() {
        let model = ContactModel::new(11, 400, 1_795_132_800_000, 10, vec![1, 2]);
        let names: Vec<String> = crate::sandbox::contacts::HUBSPOT_CONTACT_PROPERTIES
            .iter()
            .map(|&n| n.to_owned())
            .collect();
        let requested = Requested::new(names.clone());
        for i in 0..400 {
            let contact = model.contact(i);
            let mut out = Vec::new();
            write_record(&mut out, &contact, &requested, None);
            let json: serde_json::Value =
                serde_json::from_slice(&out).expect("every record is valid JSON");
            for name in &names {
                assert_eq!(
                    json["properties"][name].as_str(),
                    contact.property(name).as_deref(),
                    "contact {i} property {name}"
                );
            }
        }
    }
}
