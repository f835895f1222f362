// Package dicomout makes the DICOM objects Sentinel sends back to the
// PACS for a scored image: a Comprehensive SR holding the score and the
// decision (StructuredReport), and a Secondary Capture of the film with
// the heatmap over it (SecondaryCapture). Each is a complete Part 10 file
// (Object.Bytes), filed in a new series of the source's study with the
// source's Patient and General Study attributes, which ReadSource reads
// from the source file's header.
//
// It owns the encoding: a small explicit VR little endian writer
// (dataset.go) that writes every data set and item in ascending tag
// order, pads values to even length (a space for text, a NUL for UI and
// binary VRs), and gives sequences and items defined lengths; the file
// meta names this writer by a fixed implementation class UID under 2.25
// and the version name SENTINEL. It does no networking and no storage,
// and never logs: the caller sends the bytes and records what it sent.
// Source and Object hold patient data and print redacted.
//
// # Identity
//
// UIDs are derived, not random: "2.25." and a version-8 UUID made from a
// SHA-256 digest of the output kind, the source SOP Instance UID, the
// model version and the report revision (and, for the heatmap, the heat
// threshold). Making an output again, after a crash say, gives the same
// UID, so a resend is a duplicate rather than a second object. Outputs go
// in one series per source series, output kind and model version
// (SeriesDescription "Sentinel report", number 9001; "Sentinel heatmap",
// 9002), whose Manufacturer is "Sentinel", Manufacturer's Model Name
// "Sentinel anomaly detector" and Software Versions the model version;
// the Contributing Equipment Sequence names Sentinel as Processing
// Equipment (DCM 109102, CID 7005). IsOwnOutput recognises the outputs
// from those attributes alone when a PACS sends them back.
//
// # Structured report
//
// The SR follows TID 1500 Measurement Report as far as it applies to one
// score of one image (ContentTemplateSequence DCMR 1500):
//
//	CONTAINER (126000, DCM, "Imaging Measurement Report")
//	  HAS CONCEPT MOD  CODE Language of Content Item and Descendants = (en-US, RFC5646)   TID 1204
//	  HAS OBS CONTEXT  CODE Observer Type = Device; UIDREF Device Observer UID;
//	                   TEXT Device Observer Name, Manufacturer, Model Name           TID 1002, 1004
//	  HAS CONCEPT MOD  CODE Procedure reported = (399208008, SCT, "Plain chest X-ray")
//	  CONTAINS CONTAINER Image Library > Image Library Group > IMAGE source         TID 1600
//	                   with Modality, Target Region, Image Laterality and Image View
//	                   when the source's header codes them                          TID 1602, 1603
//	  CONTAINS CONTAINER (126010, DCM, "Imaging Measurements")
//	    CONTAINS CONTAINER (125007, DCM, "Measurement Group")                       TID 1501
//	      HAS OBS CONTEXT TEXT Tracking Identifier; UIDREF Tracking Unique Identifier
//	      CONTAINS CODE (121071, DCM, "Finding") = the decision
//	      CONTAINS NUM anomaly-score, threshold [, normal-limit] [, uncertainty]    TID 300
//	        units (1, UCUM, "no units"); each with TEXT Algorithm Name
//	        "Sentinel anomaly detector" and Algorithm Version = model version       TID 4019
//	        (HAS CONCEPT MOD); the score and uncertainty INFERRED FROM the source
//	        IMAGE (121112, DCM, "Source of Measurement")                            TID 320
//	      CONTAINS TEXT reason, when the report gives one
//	  CONTAINS TEXT (121106, DCM, "Comment") = "Not for diagnostic use; a triage aid."
//
// NUM values are written as Numeric Value (DS, the shortest decimal that
// fits 16 characters) and exactly as Floating Point Value (FD). The
// document is COMPLETE and UNVERIFIED. The Current Requested Procedure
// Evidence Sequence references the source image; with a predecessor, the
// Predecessor Documents Sequence references the superseded report
// (ReportReference derives it from its model version and revision).
//
// # Private codes
//
// No standard code names an anomaly score or its decision, so they use
// the private coding scheme 99SENTINEL, identified in the Coding Scheme
// Identification Sequence:
//
//	anomaly-score   Anomaly score        NUM: higher is less like the normals learned
//	threshold       Decision threshold   NUM: the calibrated threshold the score is compared to
//	normal-limit    Normal limit         NUM: at or below it the decision is normal
//	uncertainty     Score uncertainty    NUM: epistemic uncertainty of the score
//	reason          Decision reason      TEXT: the rule that made the decision
//	flagged         Flagged as unusual   Finding for the decision "abnormal"
//	not-flagged     Not flagged          Finding for "normal"
//	uncertain       Uncertain            Finding for "uncertain"
//	ood             Out of distribution  Finding for "ood", "out_of_distribution"
//	out-of-scope    Out of scope         Finding for "out_of_scope"
//	other           (the decision)       Finding for any other decision; its meaning is the word itself
//
// # Secondary capture
//
// The heatmap image is Secondary Capture Image Storage, RGB (colour is
// the point of it), 8 bits, interleaved, Modality OT, Conversion Type
// WSD, Image Type DERIVED\SECONDARY, Burned In Annotation YES, with the
// source in the Source Image Sequence (purpose DCM 121322, "Source image
// for image processing operation") and the source's Patient Orientation,
// Laterality and Body Part Examined. See SecondaryCapture for what it
// shows.
package dicomout
