import { CreateFoundationSchema1763890000000 } from './1763890000000-CreateFoundationSchema';
import { CreateEpicAuthorization1763900000000 } from './1763900000000-CreateEpicAuthorization';
import { CreateConnectionHealth1763910000000 } from './1763910000000-CreateConnectionHealth';
import { IndexConnectionFlags1763920000000 } from './1763920000000-IndexConnectionFlags';
import { AddScopeSyntax1763930000000 } from './1763930000000-AddScopeSyntax';
import { CreateUserLaunches1763940000000 } from './1763940000000-CreateUserLaunches';
import { AddUserConnectionState1763950000000 } from './1763950000000-AddUserConnectionState';
import { CreateClientSigningKeys1763960000000 } from './1763960000000-CreateClientSigningKeys';
import { AddAsymmetricClientAuth1763970000000 } from './1763970000000-AddAsymmetricClientAuth';
import { CreateThrottleCounter1763980000000 } from './1763980000000-CreateThrottleCounter';
import { AddCredentialEnd1763990000000 } from './1763990000000-AddCredentialEnd';
import { AddRefreshLease1764000000000 } from './1764000000000-AddRefreshLease';
import { AddFhirServerName1764010000000 } from './1764010000000-AddFhirServerName';
import { AddInteropFacts1764020000000 } from './1764020000000-AddInteropFacts';
import { SigningKeysPerEnvironment1764040000000 } from './1764040000000-SigningKeysPerEnvironment';
import { BindAuthorizationsToBrowser1764060000000 } from './1764060000000-BindAuthorizationsToBrowser';
import { BindClientSecretToTokenEndpoint1764070000000 } from './1764070000000-BindClientSecretToTokenEndpoint';
import { MoveConnectionStateToConnections1764080000000 } from './1764080000000-MoveConnectionStateToConnections';
import { CreateApiKeys1764090000000 } from './1764090000000-CreateApiKeys';
import { CreateGatewayThrottle1764100000000 } from './1764100000000-CreateGatewayThrottle';
import { CreateGatewayAccess1764110000000 } from './1764110000000-CreateGatewayAccess';
import { CreateGatewayBulkJob1764120000000 } from './1764120000000-CreateGatewayBulkJob';
import { CreateMailNotifications1764130000000 } from './1764130000000-CreateMailNotifications';
import { AddOwnConnectionNotices1764140000000 } from './1764140000000-AddOwnConnectionNotices';
import { AddUserCredentialEndIndexes1764150000000 } from './1764150000000-AddUserCredentialEndIndexes';
import { AddContactEmailConfirmation1764160000000 } from './1764160000000-AddContactEmailConfirmation';

/** Every migration, oldest first. Listed explicitly so the app, the CLI and Jest load the same set. */
export const MIGRATIONS = [
  CreateFoundationSchema1763890000000,
  CreateEpicAuthorization1763900000000,
  CreateConnectionHealth1763910000000,
  IndexConnectionFlags1763920000000,
  AddScopeSyntax1763930000000,
  CreateUserLaunches1763940000000,
  AddUserConnectionState1763950000000,
  CreateClientSigningKeys1763960000000,
  AddAsymmetricClientAuth1763970000000,
  CreateThrottleCounter1763980000000,
  AddCredentialEnd1763990000000,
  AddRefreshLease1764000000000,
  AddFhirServerName1764010000000,
  AddInteropFacts1764020000000,
  SigningKeysPerEnvironment1764040000000,
  BindAuthorizationsToBrowser1764060000000,
  BindClientSecretToTokenEndpoint1764070000000,
  MoveConnectionStateToConnections1764080000000,
  CreateApiKeys1764090000000,
  CreateGatewayThrottle1764100000000,
  CreateGatewayAccess1764110000000,
  CreateGatewayBulkJob1764120000000,
  CreateMailNotifications1764130000000,
  AddOwnConnectionNotices1764140000000,
  AddUserCredentialEndIndexes1764150000000,
  AddContactEmailConfirmation1764160000000,
];
