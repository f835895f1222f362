// Package dicomnet is Sentinel's DICOM network layer: the DICOM Upper Layer
// protocol (PS3.8: association negotiation, P-DATA transfer, release and
// abort over TCP) and the DIMSE C-ECHO and C-STORE services (PS3.7), as a
// Storage SCP (Server) and a Storage/Verification SCU (Dial, Association).
// It also writes received objects as DICOM Part 10 files (SpoolHandler) and
// reads the File Meta Information of Part 10 files (ReadFileMeta).
//
// It owns the wire format only. It never decodes pixel data and interprets
// nothing of a data set beyond the Study Instance UID that the spool needs
// for its folder (so it neither reads nor logs patient data); it does not
// import the agent, the store or the decoders, and must not: they sit
// above it. It uses the standard library only.
//
// # Association negotiation (Server)
//
// A request is checked in this order, and the first failure answers with
// an A-ASSOCIATE-RJ:
//
//   - protocol version without bit 0: permanent, source 2 (service
//     provider, ACSE), reason 2 (protocol-version-not-supported);
//   - application context other than the DICOM one: permanent, source 1
//     (service user), reason 2 (application-context-name-not-supported);
//   - called AE title other than Config.AETitle: permanent, source 1,
//     reason 7 (called-AE-title-not-recognized);
//   - calling AE title (and remote host) not on Config.AllowedCallers,
//     when that list is not empty: permanent, source 1, reason 3
//     (calling-AE-title-not-recognized);
//   - no presentation context acceptable: permanent, source 1, reason 1
//     (no-reason-given). PS3.8 would allow accepting such an association
//     with every context rejected, but it could carry no message, and
//     senders report a rejection more clearly than an association they
//     cannot use;
//   - more than Config.MaxAssociations associations at once: transient,
//     source 3 (service provider, presentation related), reason 2
//     (local-limit-exceeded), the code PS3.8 table 9-21 gives that reason
//     and the one dcmtk's storescp sends.
//
// Each presentation context is answered on its own: result 3
// (abstract-syntax-not-supported) when its abstract syntax is neither
// Verification nor one of Config.SOPClasses, result 4
// (transfer-syntaxes-not-supported) when none of its transfer syntaxes is in
// Config.TransferSyntaxes; otherwise it is accepted with the first transfer
// syntax of Config.TransferSyntaxes (our order of preference) that the peer
// proposed. Role selection items are answered for the SOP classes we accept
// with the SCU role as proposed and no SCP role; SOP class extended
// negotiation, user identity and other user information sub-items are
// ignored (PS3.7 D.3.3: an acceptor that does not support them leaves them
// out of its answer). Unknown sub-items are skipped by their length.
//
// # Messages (Server)
//
// A C-ECHO is answered with success on a Verification context and 0x0122
// on any other. A C-STORE on a context whose abstract syntax differs from
// the request's Affected SOP Class UID is answered 0x0122 (SOP class not
// supported) when that SOP class is not one we accept at all, and 0xA900
// (data set does not match SOP class) when it is; a C-STORE without a data
// set or without its UIDs is answered 0xC000 (cannot understand). The data set of a refused
// store is read and discarded. Any other DIMSE request (C-FIND, C-MOVE,
// N-*) is answered with its response command and status 0x0211
// (unrecognized operation) after its data set is discarded; C-CANCEL is
// ignored; a DIMSE response, which an SCP never expects, aborts the
// association.
//
// # Aborts
//
// Malformed input never panics: a PDU of an unknown type, a length that
// does not fit what is left or exceeds the limits (an A-ASSOCIATE PDU over
// 1 MiB, a P-DATA-TF PDU over twice our advertised maximum length plus
// 64 KiB or over 64 MiB), a bad item, an unknown presentation context ID, a
// malformed command set, or a PDU that is not expected in the current state
// makes the server send an A-ABORT with source 2 (service provider) and the
// PS3.8 reason (1 unrecognized PDU, 2 unexpected PDU, 6 invalid parameter
// value, 0 otherwise) and close the connection. No length read from the
// wire is allocated before it has been checked. When an association is
// aborted (by either side) or the connection drops in the middle of a data
// set, the data set reader the StoreHandler is reading returns an error
// that is not io.EOF, no response is sent, and the SpoolHandler removes
// its partial file. Timeouts: the A-ASSOCIATE-RQ must arrive within
// Config.AssociationTimeout (ARTIM), each later PDU within
// Config.IdleTimeout, and each write must finish within
// Config.WriteTimeout; otherwise the connection is closed.
//
// On Linux both the Server and the SCU ask for immediate TCP
// acknowledgements before each PDU they read (TCP_QUICKACK): peers that
// leave Nagle's algorithm on, as dcmtk's tools do by default, would
// otherwise wait for a delayed ACK of about 40 ms in every message.
//
// On shutdown (the context given to Serve is cancelled) the listener is
// closed at once, running associations have Config.ShutdownGrace to finish,
// and those still open after it are aborted (source 0). Serve returns when
// every association goroutine has ended.
package dicomnet
