"""JSON-LD ``@context`` of the documents Shoal emits, with PeerTube's extension terms.

Every document starts with ActivityStreams, the security vocabulary and the
``RsaSignature2017`` term; then one map of the extension terms its object type uses,
named as PeerTube names them (``pt:`` = ``https://joinpeertube.org/ns#``, ``sc:`` =
schema.org), so a PeerTube receiver and a JSON-LD processor read our fields as theirs.

:data:`LOCAL_CONTEXTS` holds the remote context documents we reference, so expansion
(tests, signature checks) never goes to the network.
"""

from __future__ import annotations

import copy
from typing import Any

AS = "https://www.w3.org/ns/activitystreams"
SECURITY = "https://w3id.org/security/v1"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
PUBLIC_ALIASES = frozenset({PUBLIC, "as:Public", "Public"})

_BASE: list[Any] = [AS, SECURITY, {"RsaSignature2017": "https://w3id.org/security#RsaSignature2017"}]
_PREFIXES = {"pt": "https://joinpeertube.org/ns#", "sc": "http://schema.org/"}


def _num(name: str) -> dict[str, str]:
    return {"@type": "sc:Number", "@id": f"pt:{name}"}


def _bool(name: str) -> dict[str, str]:
    return {"@type": "sc:Boolean", "@id": f"pt:{name}"}


VIDEO_TERMS: dict[str, Any] = {
    **_PREFIXES,
    "Hashtag": "as:Hashtag",
    "category": "sc:category",
    "licence": "sc:license",
    "subtitleLanguage": "sc:subtitleLanguage",
    "automaticallyGenerated": "pt:automaticallyGenerated",
    "sensitive": "as:sensitive",
    "language": "sc:inLanguage",
    "identifier": "sc:identifier",
    "isLiveBroadcast": "sc:isLiveBroadcast",
    "liveSaveReplay": _bool("liveSaveReplay"),
    "permanentLive": _bool("permanentLive"),
    "latencyMode": _num("latencyMode"),
    "Infohash": "pt:Infohash",
    "tileWidth": _num("tileWidth"),
    "tileHeight": _num("tileHeight"),
    "tileDuration": _num("tileDuration"),
    "aspectRatio": {"@type": "sc:Float", "@id": "pt:aspectRatio"},
    "uuid": {"@type": "sc:identifier", "@id": "pt:uuid"},
    "originallyPublishedAt": "sc:datePublished",
    "uploadDate": "sc:uploadDate",
    "hasParts": "sc:hasParts",
    "views": _num("views"),
    "state": _num("state"),
    "size": _num("size"),
    "fps": _num("fps"),
    "commentsEnabled": _bool("commentsEnabled"),
    "downloadEnabled": _bool("downloadEnabled"),
    "waitTranscoding": _bool("waitTranscoding"),
    "canReply": "pt:canReply",
    "commentsPolicy": _num("commentsPolicy"),
    "support": {"@type": "sc:Text", "@id": "pt:support"},
    "likes": {"@id": "as:likes", "@type": "@id"},
    "dislikes": {"@id": "as:dislikes", "@type": "@id"},
    "shares": {"@id": "as:shares", "@type": "@id"},
    "comments": {"@id": "as:comments", "@type": "@id"},
    "PropertyValue": "sc:PropertyValue",
    "value": "sc:value",
}

TERMS: dict[str, dict[str, Any]] = {
    "Video": VIDEO_TERMS,
    "Note": {**_PREFIXES, "replyApproval": {"@id": "pt:replyApproval", "@type": "@id"}},
    "Tombstone": {**_PREFIXES, "replyApproval": {"@id": "pt:replyApproval", "@type": "@id"}},
    "View": {
        **_PREFIXES,
        "InteractionCounter": "sc:InteractionCounter",
        "interactionType": "sc:interactionType",
        "userInteractionCount": "sc:userInteractionCount",
    },
    "Flag": {**_PREFIXES, "Hashtag": "as:Hashtag", "startAt": _num("startAt"), "endAt": _num("endAt")},
    "Collection": {**_PREFIXES},
    "Chapters": {**_PREFIXES, "hasPart": "sc:hasPart", "endOffset": "sc:endOffset",
                 "startOffset": "sc:startOffset"},  # fmt: skip
}


def context_for(object_type: str | None = None) -> list[Any]:
    """The ``@context`` list of a document whose (main) object has ``object_type``."""
    out = copy.deepcopy(_BASE)
    terms = TERMS.get(object_type or "")
    if terms:
        out.append(copy.deepcopy(terms))
    return out


def with_context(document: dict[str, Any], object_type: str | None = None) -> dict[str, Any]:
    """``document`` with ``@context`` first (activities take their object's type)."""
    if object_type is None:
        inner = document.get("object")
        object_type = inner.get("type") if isinstance(inner, dict) else document.get("type")
    return {"@context": context_for(object_type), **{k: v for k, v in document.items() if k != "@context"}}


# The W3C security vocabulary v1 context (terms only), so expansion needs no network.
SECURITY_V1: dict[str, Any] = {
    "id": "@id",
    "type": "@type",
    "dc": "http://purl.org/dc/terms/",
    "sec": "https://w3id.org/security#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "EcdsaKoblitzSignature2016": "sec:EcdsaKoblitzSignature2016",
    "Ed25519Signature2018": "sec:Ed25519Signature2018",
    "EncryptedMessage": "sec:EncryptedMessage",
    "GraphSignature2012": "sec:GraphSignature2012",
    "LinkedDataSignature2015": "sec:LinkedDataSignature2015",
    "LinkedDataSignature2016": "sec:LinkedDataSignature2016",
    "CryptographicKey": "sec:Key",
    "authenticationTag": "sec:authenticationTag",
    "canonicalizationAlgorithm": "sec:canonicalizationAlgorithm",
    "cipherAlgorithm": "sec:cipherAlgorithm",
    "cipherData": "sec:cipherData",
    "cipherKey": "sec:cipherKey",
    "created": {"@id": "dc:created", "@type": "xsd:dateTime"},
    "creator": {"@id": "dc:creator", "@type": "@id"},
    "digestAlgorithm": "sec:digestAlgorithm",
    "digestValue": "sec:digestValue",
    "domain": "sec:domain",
    "encryptionKey": "sec:encryptionKey",
    "expiration": {"@id": "sec:expiration", "@type": "xsd:dateTime"},
    "expires": {"@id": "sec:expiration", "@type": "xsd:dateTime"},
    "initializationVector": "sec:initializationVector",
    "iterationCount": "sec:iterationCount",
    "nonce": "sec:nonce",
    "normalizationAlgorithm": "sec:normalizationAlgorithm",
    "owner": {"@id": "sec:owner", "@type": "@id"},
    "password": "sec:password",
    "privateKey": {"@id": "sec:privateKey", "@type": "@id"},
    "privateKeyPem": "sec:privateKeyPem",
    "publicKey": {"@id": "sec:publicKey", "@type": "@id"},
    "publicKeyBase58": "sec:publicKeyBase58",
    "publicKeyPem": "sec:publicKeyPem",
    "publicKeyWif": "sec:publicKeyWif",
    "publicKeyService": {"@id": "sec:publicKeyService", "@type": "@id"},
    "revoked": {"@id": "sec:revoked", "@type": "xsd:dateTime"},
    "salt": "sec:salt",
    "signature": "sec:signature",
    "signatureAlgorithm": "sec:signingAlgorithm",
    "signatureValue": "sec:signatureValue",
}


def local_contexts() -> dict[str, dict[str, Any]]:
    """Context documents by URL: ActivityStreams (bovine's copy) and security v1."""
    from bovine.jsonld import activitystreams_context

    return {AS: {"@context": activitystreams_context}, SECURITY: {"@context": SECURITY_V1}}


def offline_document_loader(extra: dict[str, dict[str, Any]] | None = None) -> Any:
    """A pyld document loader serving :func:`local_contexts` (plus ``extra``); any other URL fails."""
    known = {**local_contexts(), **(extra or {})}

    def load(url: str, options: Any = None, **_: Any) -> dict[str, Any]:
        key = url.rstrip("/") if url.rstrip("/") in known else url
        if key not in known:
            from pyld.jsonld import JsonLdError

            raise JsonLdError(f"context {url} is not available offline", "jsonld.LoadDocumentError")
        return {"contentType": "application/ld+json", "contextUrl": None, "documentUrl": url,
                "document": copy.deepcopy(known[key])}  # fmt: skip

    return load
