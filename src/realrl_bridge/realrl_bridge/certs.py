"""Certificates for the bridge's mutual TLS links: one CA, one router, one per site.

    python -m realrl_bridge.certs DIR --router-host 127.0.0.1 --site lab_a --site lab_b

writes into DIR:

    ca.pem  ca.key                     the project's own certificate authority
    router.pem  router.key             the cloud router (names: --router-host, plus localhost)
    sites/<site>.pem  sites/<site>.key one client certificate per site; its common name is the
                                       site name, which the router's access control keys on

Keys are EC P-256 in PKCS#8 PEM, written with mode 0600. An existing CA in DIR is reused, so
sites can be added later without re-issuing the others; ``--force`` starts a new CA.
"""
from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NAME_RE = re.compile(r'^[A-Za-z0-9_\-]{1,64}$')
"""Site names: they become certificate common names and Zenoh key expression chunks."""


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key, as files."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class CertFolder:
    """Where ``make_folder`` put everything."""

    root: Path
    ca: Issued
    router: Issued
    sites: dict

    def site(self, name: str) -> Issued:
        """The certificate of one site."""
        return self.sites[name]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _write_key(path: Path, key) -> None:
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'wb') as f:
        f.write(data)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _load(issued: Issued):
    cert = x509.load_pem_x509_certificate(issued.cert.read_bytes())
    key = serialization.load_pem_private_key(issued.key.read_bytes(), password=None)
    return cert, key


def make_ca(cert_path: Path, key_path: Path, name: str = 'realrl-bridge-ca',
            valid_days: int = 3650) -> Issued:
    """A self-signed certificate authority."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = _now()
    cert = (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=valid_days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                         crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    _write_key(key_path, key)
    _write_cert(cert_path, cert)
    return Issued(cert_path, key_path)


def issue(ca: Issued, cert_path: Path, key_path: Path, common_name: str, *,
          server_names: tuple[str, ...] = (), client: bool = True,
          valid_days: float = 825, not_before: dt.datetime | None = None) -> Issued:
    """A certificate signed by ``ca``.

    ``server_names`` (DNS names or IP addresses) make it usable by a TLS server (the router);
    ``client`` lets it authenticate a client (a site). ``not_before`` and ``valid_days`` can
    place the validity window in the past, which is how tests make an expired certificate.
    """
    if not NAME_RE.match(common_name):
        raise ValueError(f'common name {common_name!r}: use 1-64 letters, digits, _ or -')
    ca_cert, ca_key = _load(ca)
    key = ec.generate_private_key(ec.SECP256R1())
    start = not_before or (_now() - dt.timedelta(minutes=5))
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server_names else []) + (
        [ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
    if not usages:
        raise ValueError('a certificate needs server_names, client=True or both')
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
               .issuer_name(ca_cert.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(start)
               .not_valid_after(start + dt.timedelta(days=valid_days))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   ca_key.public_key()), critical=False))
    if server_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(n) for n in server_names]),
            critical=False)
    _write_key(key_path, key)
    _write_cert(cert_path, builder.sign(ca_key, hashes.SHA256()))
    return Issued(cert_path, key_path)


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def make_folder(root: str | Path, sites: tuple[str, ...] | list[str],
                router_hosts: tuple[str, ...] = ('127.0.0.1',), *,
                force: bool = False) -> CertFolder:
    """CA (reused if present, unless ``force``), router and site certificates in ``root``."""
    root = Path(root)
    for site in sites:
        if not NAME_RE.match(site):
            raise ValueError(f'site {site!r}: use 1-64 letters, digits, _ or -')
    ca = Issued(root / 'ca.pem', root / 'ca.key')
    if force or not (ca.cert.exists() and ca.key.exists()):
        make_ca(ca.cert, ca.key)
    names = tuple(dict.fromkeys(tuple(router_hosts) + ('localhost',)))
    router = issue(ca, root / 'router.pem', root / 'router.key', 'realrl-router',
                   server_names=names, client=True)
    issued = {s: issue(ca, root / 'sites' / f'{s}.pem', root / 'sites' / f'{s}.key', s)
              for s in sites}
    return CertFolder(root, ca, router, issued)


def main(argv: list[str] | None = None) -> int:
    """Command line: write a certificate folder."""
    parser = argparse.ArgumentParser(prog='python -m realrl_bridge.certs',
                                     description=__doc__.split('\n')[0])
    parser.add_argument('folder', help='where to write the certificates')
    parser.add_argument('--site', action='append', default=[], required=True,
                        help='a site name (repeat for several); its certificate CN')
    parser.add_argument('--router-host', action='append', default=[],
                        help='a DNS name or IP address the edges connect to (repeatable; '
                             'default 127.0.0.1)')
    parser.add_argument('--force', action='store_true', help='make a new CA even if one exists')
    args = parser.parse_args(argv)
    try:
        made = make_folder(args.folder, args.site, tuple(args.router_host) or ('127.0.0.1',),
                           force=args.force)
    except ValueError as e:
        parser.error(str(e))
    print(f'CA {made.ca.cert}; router {made.router.cert}; sites: '
          + ', '.join(str(i.cert) for i in made.sites.values()))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
