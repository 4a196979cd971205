import { BadRequestException, ValidationPipe } from '@nestjs/common';
import { Type } from 'class-transformer';
import { IsInt, IsString, Length, Min, ValidateNested } from 'class-validator';

import { DomainError, ErrorCode } from './domain-error';
import { fieldErrorsOf, fieldMessages, validationFailed, validationPipeError } from './field-errors';

class Address {
  @IsString() @Length(2, 50) city!: string;
  @IsInt() @Min(1) number!: number;
}

class Line {
  @IsString() name!: string;
}

class Dto {
  @IsString() @Length(1, 5) name!: string;
  @ValidateNested() @Type(() => Address) address!: Address;
  @ValidateNested({ each: true }) @Type(() => Line) lines!: Line[];
}

const OPTIONS = { whitelist: true, forbidNonWhitelisted: true, transform: true };
const BAD = { name: '', extra: 1, address: { city: 1, number: 0 }, lines: [{ name: 2 }, { name: 'ok' }] };

async function rejectionOf(pipe: ValidationPipe, value: unknown): Promise<unknown> {
  return pipe.transform(value, { type: 'body', metatype: Dto }).then(
    () => undefined,
    (error: unknown) => error,
  );
}

describe('field errors', () => {
  it("words every message as Nest's own ValidationPipe does, keyed by the field's path", async () => {
    const nest = (await rejectionOf(new ValidationPipe(OPTIONS), BAD)) as BadRequestException;
    const ours = (await rejectionOf(
      new ValidationPipe({ ...OPTIONS, exceptionFactory: validationPipeError }),
      BAD,
    )) as DomainError;

    const nestMessages = (nest.getResponse() as { message: string[] }).message;
    expect(ours).toBeInstanceOf(DomainError);
    expect(ours.code).toBe(ErrorCode.ValidationFailed);
    expect(fieldMessages(ours.fields!)).toEqual(nestMessages);
    expect(ours.fields).toEqual({
      name: ['name must be longer than or equal to 1 characters'],
      extra: ['property extra should not exist'],
      'address.city': [
        'address.city must be longer than or equal to 2 and shorter than or equal to 50 characters',
        'address.city must be a string',
      ],
      'address.number': ['address.number must not be less than 1'],
      'lines.0.name': ['lines.0.name must be a string'],
    });
  });

  it('groups several messages of one field in the order found', () => {
    expect(
      fieldErrorsOf([
        { property: 'a', constraints: { x: 'a is bad', y: 'a is worse' }, children: [] },
        { property: 'b', constraints: { x: 'b is bad' } },
      ]),
    ).toEqual({ a: ['a is bad', 'a is worse'], b: ['b is bad'] });
  });

  it("a service's own rule makes the same error: message lists every field's messages", () => {
    const sut = validationFailed({
      scopes: ['scopes must not ask for system/'],
      clientSecret: ['no secret here'],
    });
    expect(sut.code).toBe(ErrorCode.ValidationFailed);
    expect(sut.fields).toEqual({
      scopes: ['scopes must not ask for system/'],
      clientSecret: ['no secret here'],
    });
    expect(sut.message).toBe('scopes must not ask for system/ no secret here');
  });
});
