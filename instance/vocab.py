"""PeerTube's fixed vocabularies: categories, licences, languages and privacies, by id."""

from __future__ import annotations

CATEGORIES: dict[int, str] = {
    1: "Music",
    2: "Films",
    3: "Vehicles",
    4: "Art",
    5: "Sports",
    6: "Travels",
    7: "Gaming",
    8: "People",
    9: "Comedy",
    10: "Entertainment",
    11: "News & Politics",
    12: "How To",
    13: "Education",
    14: "Activism",
    15: "Science & Technology",
    16: "Animals",
    17: "Kids",
    18: "Food",
}

LICENCES: dict[int, str] = {
    1: "Attribution",
    2: "Attribution - Share Alike",
    3: "Attribution - No Derivatives",
    4: "Attribution - Non Commercial",
    5: "Attribution - Non Commercial - Share Alike",
    6: "Attribution - Non Commercial - No Derivatives",
    7: "Public Domain Dedication",
}

LANGUAGES: dict[str, str] = {
    "ar": "Arabic",
    "bn": "Bengali",
    "ca": "Catalan",
    "cs": "Czech",
    "cy": "Welsh",
    "da": "Danish",
    "de": "German",
    "el": "Greek",
    "en": "English",
    "eo": "Esperanto",
    "es": "Spanish",
    "eu": "Basque",
    "fa": "Persian",
    "fi": "Finnish",
    "fr": "French",
    "ga": "Irish",
    "gd": "Gaelic",
    "gl": "Galician",
    "he": "Hebrew",
    "hi": "Hindi",
    "hr": "Croatian",
    "hu": "Hungarian",
    "id": "Indonesian",
    "is": "Icelandic",
    "it": "Italian",
    "ja": "Japanese",
    "ko": "Korean",
    "lt": "Lithuanian",
    "lv": "Latvian",
    "nl": "Dutch",
    "no": "Norwegian",
    "oc": "Occitan",
    "pl": "Polish",
    "pt": "Portuguese",
    "ro": "Romanian",
    "ru": "Russian",
    "sk": "Slovak",
    "sl": "Slovenian",
    "sq": "Albanian",
    "sr": "Serbian",
    "sv": "Swedish",
    "sw": "Swahili",
    "ta": "Tamil",
    "th": "Thai",
    "tr": "Turkish",
    "uk": "Ukrainian",
    "ur": "Urdu",
    "vi": "Vietnamese",
    "zh": "Chinese",
    "zxx": "No linguistic content",
}

PRIVACIES: dict[int, str] = {1: "Public", 2: "Unlisted", 3: "Private", 4: "Internal"}


def labelled(table: dict, key: object) -> dict[str, object]:
    """PeerTube's ``{id, label}`` pair; unknown or empty keys give ``{id: null, label: "Unknown"}``."""
    if key is None or key not in table:
        return {"id": None, "label": "Unknown"}
    return {"id": key, "label": table[key]}
