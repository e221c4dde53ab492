"""GS1 Core Business Vocabulary (CBV 2.0) code lists and their three spellings.

EPCIS 2.0 JSON-LD writes CBV values as bare terms (``"shipping"``); the GS1 context
expands them to Web URIs (``https://ref.gs1.org/cbv/BizStep-shipping``); EPCIS 1.x
and many existing systems still write URNs (``urn:epcglobal:cbv:bizstep:shipping``).
The lists below are the ones of the GS1 EPCIS 2.0 JSON Schema and JSON-LD context,
kept in code so that nothing is fetched at run time (docs/spec/02-epcis.md §2.2).

Pure: no I/O, stdlib only.
"""

from __future__ import annotations

from typing import Final, Literal

__all__ = [
    "ALERT_TYPES",
    "BIZ_STEPS",
    "BIZ_TRANSACTION_TYPES",
    "CBV_WEB",
    "COMPONENTS",
    "DISPOSITIONS",
    "ERROR_REASONS",
    "KINDS",
    "MEASUREMENT_TYPES",
    "SOURCE_DEST_TYPES",
    "CbvKind",
    "urn_prefix",
    "vocabulary",
    "web_prefix",
]

CbvKind = Literal["bizStep", "disposition", "bizTransactionType", "sourceDestType", "errorReason"]
"""The CBV code lists that :func:`ledger.epcis.normalize_cbv` understands."""

KINDS: Final[tuple[CbvKind, ...]] = (
    "bizStep",
    "disposition",
    "bizTransactionType",
    "sourceDestType",
    "errorReason",
)

CBV_WEB: Final = "https://ref.gs1.org/cbv/"
"""Namespace of CBV 2.0 Web URIs (the ``cbv:`` prefix of the GS1 context)."""

BIZ_STEPS: Final = frozenset(
    {
        "accepting",
        "arriving",
        "assembling",
        "collecting",
        "commissioning",
        "consigning",
        "creating_class_instance",
        "cycle_counting",
        "decommissioning",
        "departing",
        "destroying",
        "disassembling",
        "dispensing",
        "encoding",
        "entering_exiting",
        "holding",
        "inspecting",
        "installing",
        "killing",
        "loading",
        "other",
        "packing",
        "picking",
        "receiving",
        "removing",
        "repackaging",
        "repairing",
        "replacing",
        "reserving",
        "retail_selling",
        "sampling",
        "sensor_reporting",
        "shipping",
        "staging_outbound",
        "stock_taking",
        "stocking",
        "storing",
        "transporting",
        "unloading",
        "unpacking",
        "void_shipping",
    }
)

DISPOSITIONS: Final = frozenset(
    {
        "active",
        "available",
        "completeness_inferred",
        "completeness_verified",
        "conformant",
        "container_closed",
        "container_open",
        "damaged",
        "destroyed",
        "dispensed",
        "disposed",
        "encoded",
        "expired",
        "in_progress",
        "in_transit",
        "inactive",
        "mismatch_class",
        "mismatch_instance",
        "mismatch_quantity",
        "needs_replacement",
        "no_pedigree_match",
        "non_conformant",
        "non_sellable_other",
        "partially_dispensed",
        "recalled",
        "reserved",
        "retail_sold",
        "returned",
        "sellable_accessible",
        "sellable_not_accessible",
        "stolen",
        "unavailable",
        "unknown",
    }
)

BIZ_TRANSACTION_TYPES: Final = frozenset(
    {
        "bol",
        "cert",
        "desadv",
        "inv",
        "pedigree",
        "po",
        "poc",
        "prodorder",
        "recadv",
        "rma",
        "testprd",
        "testres",
        "upevt",
    }
)

SOURCE_DEST_TYPES: Final = frozenset({"owning_party", "possessing_party", "location"})

ERROR_REASONS: Final = frozenset({"did_not_occur", "incorrect_data"})

COMPONENTS: Final = frozenset(
    {
        "x",
        "y",
        "z",
        "axial_distance",
        "azimuth",
        "height",
        "spherical_radius",
        "polar_angle",
        "elevation_angle",
        "easting",
        "northing",
        "latitude",
        "longitude",
        "altitude",
    }
)
"""sensorReport ``component`` values (``cbv:Comp-…``)."""

MEASUREMENT_TYPES: Final = frozenset(
    {
        "AbsoluteHumidity",
        "AbsorbedDose",
        "AbsorbedDoseRate",
        "Acceleration",
        "Radioactivity",
        "Altitude",
        "AmountOfSubstance",
        "AmountOfSubstancePerUnitVolume",
        "Angle",
        "AngularAcceleration",
        "AngularMomentum",
        "AngularVelocity",
        "Area",
        "Capacitance",
        "Conductance",
        "Conductivity",
        "Count",
        "Density",
        "Dimensionless",
        "DoseEquivalent",
        "DoseEquivalentRate",
        "DynamicViscosity",
        "ElectricCharge",
        "ElectricCurrent",
        "ElectricCurrentDensity",
        "ElectricFieldStrength",
        "Energy",
        "Exposure",
        "Force",
        "Frequency",
        "Illuminance",
        "Inductance",
        "Irradiance",
        "KinematicViscosity",
        "Length",
        "LinearMomentum",
        "Luminance",
        "LuminousFlux",
        "LuminousIntensity",
        "MagneticFlux",
        "MagneticFluxDensity",
        "MagneticVectorPotential",
        "Mass",
        "MassConcentration",
        "MassFlowRate",
        "MassPerAreaTime",
        "MemoryCapacity",
        "MolalityOfSolute",
        "MolarEnergy",
        "MolarMass",
        "MolarVolume",
        "Power",
        "Pressure",
        "RadiantFlux",
        "RadiantIntensity",
        "RelativeHumidity",
        "Resistance",
        "Resistivity",
        "SolidAngle",
        "SpecificVolume",
        "Speed",
        "SurfaceDensity",
        "SurfaceTension",
        "Temperature",
        "Time",
        "Torque",
        "Voltage",
        "Volume",
        "VolumeFlowRate",
        "VolumeFraction",
        "VolumetricFlux",
        "Wavenumber",
    }
)
"""sensorReport ``type`` values (GS1 Web Vocabulary, ``gs1:…``)."""

ALERT_TYPES: Final = frozenset({"ALARM_CONDITION", "ERROR_CONDITION"})
"""sensorReport ``exception`` values."""

_TERMS: Final[dict[CbvKind, frozenset[str]]] = {
    "bizStep": BIZ_STEPS,
    "disposition": DISPOSITIONS,
    "bizTransactionType": BIZ_TRANSACTION_TYPES,
    "sourceDestType": SOURCE_DEST_TYPES,
    "errorReason": ERROR_REASONS,
}

# CBV 2.0 §8: Web URI prefix per code list, and the EPCIS 1.x URN prefix.
_WEB: Final[dict[CbvKind, str]] = {
    "bizStep": CBV_WEB + "BizStep-",
    "disposition": CBV_WEB + "Disp-",
    "bizTransactionType": CBV_WEB + "BTT-",
    "sourceDestType": CBV_WEB + "SDT-",
    "errorReason": CBV_WEB + "ER-",
}
_URN: Final[dict[CbvKind, str]] = {
    "bizStep": "urn:epcglobal:cbv:bizstep:",
    "disposition": "urn:epcglobal:cbv:disp:",
    "bizTransactionType": "urn:epcglobal:cbv:btt:",
    "sourceDestType": "urn:epcglobal:cbv:sdt:",
    "errorReason": "urn:epcglobal:cbv:er:",
}


def vocabulary(kind: CbvKind) -> frozenset[str]:
    """The bare terms of one CBV code list.

    Args:
        kind: Which code list.

    Returns:
        The frozen set of bare terms.
    """
    return _TERMS[kind]


def web_prefix(kind: CbvKind) -> str:
    """The CBV 2.0 Web URI prefix of a code list, e.g. ``https://ref.gs1.org/cbv/BizStep-``."""
    return _WEB[kind]


def urn_prefix(kind: CbvKind) -> str:
    """The EPCIS 1.x URN prefix of a code list, e.g. ``urn:epcglobal:cbv:bizstep:``."""
    return _URN[kind]
